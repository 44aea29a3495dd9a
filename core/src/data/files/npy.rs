//! NumPy arrays: `.npy` files (format versions 1, 2 and 3: the magic `\x93NUMPY`, the version,
//! the header's length, a Python dict literal with `descr`, `fortran_order` and `shape`, then the
//! data) and `.npz` archives of them (ZIP, stored or deflated, as `numpy.savez` and
//! `savez_compressed` write). Element types read: bool, (u)int8/16/32/64 and float16/32/64, either
//! byte order. Big-endian data is converted, and so is Fortran (column-major) order: both are
//! what NumPy itself may write, and the values are the same array.

use super::{Labels, MAX_CLASSES, Samples, bad, whole_labels};
use crate::error::Result;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One array: its shape (row major) and values.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub values: NpyValues,
}

/// An array's values, widened to one of three kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyValues {
    /// uint8 (and bool): pixels, kept at one byte each.
    U8(Vec<u8>),
    /// Other integers.
    Int(Vec<i64>),
    /// float16/32/64, as float32.
    Float(Vec<f32>),
}

/// A value of the header's dict.
#[derive(Debug, PartialEq)]
enum Literal {
    Text(String),
    Bool(bool),
    Numbers(Vec<usize>),
    /// A list or anything else (a structured dtype's `descr`).
    Other,
}

/// Reads the header's dict literal, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_dict(text: &str) -> Option<Vec<(String, Literal)>> {
    let mut rest = text.trim().strip_prefix('{')?;
    let mut entries = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return after.trim().is_empty().then_some(entries);
        }
        let (key, after) = quoted(rest)?;
        rest = after.trim_start().strip_prefix(':')?.trim_start();
        let value;
        (value, rest) = if rest.starts_with(['\'', '"']) {
            let (text, after) = quoted(rest)?;
            (Literal::Text(text), after)
        } else if let Some(after) = rest.strip_prefix("True") {
            (Literal::Bool(true), after)
        } else if let Some(after) = rest.strip_prefix("False") {
            (Literal::Bool(false), after)
        } else if let Some(after) = rest.strip_prefix('(') {
            let end = after.find(')')?;
            let numbers = after[..end]
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches('L').parse().ok())
                .collect::<Option<Vec<usize>>>()?;
            (Literal::Numbers(numbers), &after[end + 1..])
        } else {
            // Skips a list or another value up to the next key: nested brackets balanced.
            let mut depth = 0usize;
            let end = rest.char_indices().find_map(|(i, c)| {
                match c {
                    '[' | '(' | '{' => depth += 1,
                    ']' | ')' | '}' if depth > 0 => depth -= 1,
                    ',' | '}' if depth == 0 => return Some(i),
                    _ => {}
                }
                None
            })?;
            (Literal::Other, &rest[end..])
        };
        entries.push((key, value));
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A quoted string at the start of `text` and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &text[1..];
    let end = body.find(quote)?;
    Some((body[..end].to_string(), &body[end + 1..]))
}

/// The element type a `descr` such as `<f4` or `|u1` names.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Element {
    kind: char,
    size: usize,
    big_endian: bool,
}

fn element(descr: &str) -> Option<Element> {
    let (order, rest) = match descr.chars().next()? {
        c @ ('<' | '>' | '|' | '=') => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let mut chars = rest.chars();
    let kind = chars.next()?;
    let size: usize = chars.as_str().parse().ok()?;
    let known = matches!((kind, size), ('b', 1) | ('u' | 'i', 1 | 2 | 4 | 8) | ('f', 2 | 4 | 8));
    known.then_some(Element { kind, size, big_endian: order == '>' })
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((h >> 10) & 0x1f);
    let mantissa = f32::from(h & 0x3ff);
    match exponent {
        0 => sign * mantissa * 2f32.powi(-24),
        31 if mantissa == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + mantissa / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Values stored in Fortran (column-major) order, put in row-major order.
fn fortran_to_c<T: Copy>(values: Vec<T>, shape: &[usize]) -> Vec<T> {
    if shape.len() < 2 || values.is_empty() {
        return values;
    }
    let mut strides = Vec::with_capacity(shape.len());
    let mut stride = 1;
    for &d in shape {
        strides.push(stride);
        stride *= d;
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(values[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// Parses a `.npy` file's bytes (the file `origin`, named in every error).
pub fn parse_npy(bytes: &[u8], origin: &Path) -> Result<NpyArray> {
    let bad = |reason: String| bad(origin, reason);
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Err(bad("is not a NumPy .npy file (it does not start with \\x93NUMPY)".into()));
    }
    let (length, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10usize),
        2 | 3 if bytes.len() < 12 => return Err(bad("is cut short inside its header".into())),
        2 | 3 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(format!("is .npy format version {v}; versions 1, 2 and 3 are read"))),
    };
    let header = bytes
        .get(start..start.saturating_add(length))
        .ok_or_else(|| bad(format!("is cut short: its header of {length} bytes ends past the file")))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("has a header that is not text".into()))?;
    let dict =
        parse_dict(header).ok_or_else(|| bad(format!("has a header that is not a NumPy dict: {}", header.trim())))?;
    let get = |key: &str| dict.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(Literal::Text(d)) => d.clone(),
        Some(_) => return Err(bad("holds a structured array (fields); plain numeric arrays are read".into())),
        None => return Err(bad("has no `descr` (element type) in its header".into())),
    };
    let element = element(&descr).ok_or_else(|| {
        bad(format!("has elements of type `{descr}`; bool, (u)int8 to 64 and float16 to 64 are read"))
    })?;
    let fortran = match get("fortran_order") {
        Some(Literal::Bool(f)) => *f,
        _ => return Err(bad("has no `fortran_order` True/False in its header".into())),
    };
    let shape = match get("shape") {
        Some(Literal::Numbers(shape)) => shape.clone(),
        _ => return Err(bad("has no `shape` tuple in its header".into())),
    };
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let data = &bytes[start + length..];
    let expected = count.and_then(|c| c.checked_mul(element.size));
    if expected != Some(data.len()) {
        let needs = expected.map_or_else(|| "more than can be addressed".to_string(), |e| format!("{e}"));
        return Err(bad(format!("holds {} bytes of data, but shape {shape:?} of `{descr}` needs {needs}", data.len())));
    }
    let word = |chunk: &[u8]| -> u64 {
        let mut b = [0u8; 8];
        if element.big_endian {
            b[8 - chunk.len()..].copy_from_slice(chunk);
            u64::from_be_bytes(b)
        } else {
            b[..chunk.len()].copy_from_slice(chunk);
            u64::from_le_bytes(b)
        }
    };
    let words = data.chunks_exact(element.size).map(word);
    let bits = (element.size * 8) as u32;
    let values = match element.kind {
        'b' | 'u' if element.size == 1 => NpyValues::U8(data.to_vec()),
        'u' => NpyValues::Int(
            words
                .map(|w| i64::try_from(w).map_err(|_| bad(format!("holds {w}, larger than this reader takes"))))
                .collect::<Result<_>>()?,
        ),
        // Sign-extends the `bits`-wide integer.
        'i' => NpyValues::Int(words.map(|w| ((w << (64 - bits)) as i64) >> (64 - bits)).collect()),
        _ => NpyValues::Float(match element.size {
            2 => words.map(|w| f16_to_f32(w as u16)).collect(),
            4 => words.map(|w| f32::from_bits(w as u32)).collect(),
            _ => words.map(|w| f64::from_bits(w) as f32).collect(),
        }),
    };
    let values = if fortran {
        match values {
            NpyValues::U8(v) => NpyValues::U8(fortran_to_c(v, &shape)),
            NpyValues::Int(v) => NpyValues::Int(fortran_to_c(v, &shape)),
            NpyValues::Float(v) => NpyValues::Float(fortran_to_c(v, &shape)),
        }
    } else {
        values
    };
    Ok(NpyArray { shape, values })
}

/// A features array and a labels array as samples: features `N×D`, `N×H×W` or `N×C×H×W`,
/// labels `N` (or `N×1`) whole numbers ≥ 0.
pub(super) fn samples(features: NpyArray, labels: NpyArray, features_at: &Path, labels_at: &Path) -> Result<Samples> {
    let shape = &features.shape;
    let sample_shape = match shape.as_slice() {
        [_, d] => vec![*d],
        [_, h, w] => vec![1, *h, *w],
        [_, c, _, w] if [1, 3, 4].contains(w) && ![1, 3, 4].contains(c) => {
            return Err(bad(
                features_at,
                format!(
                    "holds an array of {shape:?}, which looks channels-last (N x H x W x C); 4-D arrays are read as N x C x H x W: save x.transpose(0, 3, 1, 2)"
                ),
            ));
        }
        [_, c, h, w] => vec![*c, *h, *w],
        _ => {
            return Err(bad(
                features_at,
                format!("holds an array of {shape:?}; features are N x D, N x H x W or N x C x H x W"),
            ));
        }
    };
    let n = shape[0];
    let label_count = match labels.shape.as_slice() {
        [m] | [m, 1] => *m,
        other => {
            return Err(bad(labels_at, format!("holds an array of {other:?}; labels are one number per sample")));
        }
    };
    if label_count != n {
        return Err(bad(
            labels_at,
            format!("holds {label_count} labels for the {n} samples of {}", features_at.display()),
        ));
    }
    let labels = match labels.values {
        NpyValues::U8(v) => v.into_iter().map(u32::from).collect(),
        NpyValues::Int(v) => {
            if let Some((i, l)) = v.iter().enumerate().find(|&(_, &l)| !(0..MAX_CLASSES as i64).contains(&l)) {
                return Err(bad(
                    labels_at,
                    format!("label {l} of sample {i} is not a class number (0 to {})", MAX_CLASSES - 1),
                ));
            }
            v.into_iter().map(|l| l as u32).collect()
        }
        NpyValues::Float(v) => whole_labels(v.into_iter().map(f64::from), labels_at)?,
    };
    let (features, eight_bit) = match features.values {
        NpyValues::U8(v) => (v.into_iter().map(f32::from).collect(), true),
        NpyValues::Int(v) => (v.into_iter().map(|x| x as f32).collect(), false),
        NpyValues::Float(v) => (v, false),
    };
    Ok(Samples { features, sample_shape, labels: Labels::Numbers(labels), eight_bit })
}

/// The arrays of a `.npz` archive's bytes (the file `origin`), by name (without `.npy`), in
/// the archive's order.
pub fn parse_npz(bytes: &[u8], origin: &Path) -> Result<Vec<(String, NpyArray)>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(origin, format!("is not a .npz (ZIP) archive: {e}")))?;
    let mut arrays = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| bad(origin, format!("entry {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(|e| bad(origin, format!("entry {i} has no readable name: {e}")))?.into_owned();
        let at = array_origin(origin, &name);
        let Some(stem) = name.strip_suffix(".npy") else {
            return Err(bad(&at, "is not a .npy array; a .npz archive holds only arrays"));
        };
        // The size the archive states bounds the reading (a damaged archive cannot inflate
        // beyond it).
        let stated = entry.size();
        let mut content = Vec::new();
        (&mut entry)
            .take(stated.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(|e| bad(&at, format!("cannot be unpacked: {e}")))?;
        if content.len() as u64 != stated {
            return Err(bad(&at, format!("unpacks to {} bytes where the archive states {stated}", content.len())));
        }
        arrays.push((stem.to_string(), parse_npy(&content, &at)?));
    }
    Ok(arrays)
}

/// How messages name an array in an archive: `data.npz (x.npy)`.
fn array_origin(archive: &Path, name: &str) -> PathBuf {
    PathBuf::from(format!("{} ({name})", archive.display()))
}

type Split = (Samples, PathBuf);

/// A `.npz` archive's training samples and, where it holds them, test samples; `names` are the
/// configured (features, labels) arrays (see `FileFormat::Npz` for the choice without them).
pub(super) fn read_npz(
    bytes: &[u8],
    origin: &Path,
    names: (Option<&str>, Option<&str>),
) -> Result<(Split, Option<Split>)> {
    let arrays = parse_npz(bytes, origin)?;
    let listed = || arrays.iter().map(|(n, a)| format!("{n} {:?}", a.shape)).collect::<Vec<_>>().join(", ");
    let has = |name: &str| arrays.iter().any(|(n, _)| n == name);
    let (features, labels, test) = match names {
        (Some(f), Some(l)) => (f.to_string(), l.to_string(), None),
        (None, None) if has("x") && has("y") => ("x".into(), "y".into(), None),
        (None, None) if has("x_train") && has("y_train") => {
            let test = (has("x_test") && has("y_test")).then(|| ("x_test".to_string(), "y_test".to_string()));
            ("x_train".into(), "y_train".into(), test)
        }
        (None, None) if arrays.len() == 2 => {
            let is_labels = |a: &NpyArray| matches!(a.shape.as_slice(), [_] | [_, 1]);
            match (is_labels(&arrays[0].1), is_labels(&arrays[1].1)) {
                (false, true) => (arrays[0].0.clone(), arrays[1].0.clone(), None),
                (true, false) => (arrays[1].0.clone(), arrays[0].0.clone(), None),
                _ => {
                    return Err(bad(
                        origin,
                        format!("holds {}; name the features and labels arrays in the config", listed()),
                    ));
                }
            }
        }
        (None, None) => {
            return Err(bad(
                origin,
                format!(
                    "holds {}; without x and y (or x_train and y_train, or just two arrays) name the features and labels arrays in the config",
                    listed()
                ),
            ));
        }
        _ => return Err(bad(origin, "names only one of the features and labels arrays; name both")),
    };
    let take = |name: &str| -> Result<(NpyArray, PathBuf)> {
        let at = arrays
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| bad(origin, format!("has no array `{name}` (it holds {})", listed())))?;
        Ok((arrays[at].1.clone(), array_origin(origin, &format!("{name}.npy"))))
    };
    let split = |(f, l): (&str, &str)| -> Result<Split> {
        let (features, features_at) = take(f)?;
        let (labels, labels_at) = take(l)?;
        Ok((samples(features, labels, &features_at, &labels_at)?, features_at))
    };
    let train = split((&features, &labels))?;
    let test = test.map(|(f, l)| split((&f, &l))).transpose()?;
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file as NumPy writes it (version 1, header padded to 64 bytes).
    pub(crate) fn npy(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        let tuple = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        let fortran = if fortran { "True" } else { "False" };
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {tuple}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    #[test]
    fn reads_every_element_type_byte_order_and_layout() {
        let at = Path::new("a.npy");
        let a = parse_npy(&npy("|u1", false, &[2, 2], &[1, 2, 3, 4]), at).expect("u1");
        assert_eq!((a.shape, a.values), (vec![2, 2], NpyValues::U8(vec![1, 2, 3, 4])));
        let be: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(parse_npy(&npy(">f4", false, &[2], &be), at).expect("f4").values, NpyValues::Float(vec![1.5, -2.0]));
        let i2: Vec<u8> = [-3i16, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(parse_npy(&npy("<i2", false, &[2], &i2), at).expect("i2").values, NpyValues::Int(vec![-3, 7]));
        let half: Vec<u8> = [0x3c00u16, 0xc000, 0x3555].iter().flat_map(|v| v.to_le_bytes()).collect();
        let NpyValues::Float(h) = parse_npy(&npy("<f2", false, &[3], &half), at).expect("f2").values else {
            panic!("float")
        };
        assert_eq!(&h[..2], &[1.0, -2.0]);
        assert!((h[2] - 1.0 / 3.0).abs() < 1e-3);
        // Fortran order: the 2x3 array [[0, 1, 2], [3, 4, 5]] stored column by column.
        let f8: Vec<u8> = [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse_npy(&npy("<f8", true, &[2, 3], &f8), at).expect("fortran");
        assert_eq!(a.values, NpyValues::Float(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    }

    #[test]
    fn refuses_what_it_cannot_read_naming_the_file() {
        let at = Path::new("bad.npy");
        let cases: [(Vec<u8>, &str); 5] = [
            (b"PK\x03\x04".to_vec(), "not a NumPy .npy file"),
            (npy("<c8", false, &[1], &[0; 8]), "type `<c8`"),
            (npy("<f4", false, &[3], &[0; 8]), "holds 8 bytes of data, but shape [3] of `<f4` needs 12"),
            (npy("<f4", false, &[3], &[0; 8])[..20].to_vec(), "cut short"),
            (b"\x93NUMPY\x09\x00\x00\x00".to_vec(), "version 9"),
        ];
        for (bytes, expected) in cases {
            let err = parse_npy(&bytes, at).expect_err(expected).to_string();
            assert!(err.starts_with("data file bad.npy: ") && err.contains(expected), "{err}");
        }
    }
}
