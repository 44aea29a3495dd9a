//! The header of a safetensors file, read without its data: an 8-byte little-endian length, then
//! that many bytes of JSON naming each tensor's type, shape and byte range. Every range is
//! checked against the file's length and its tensor's size before any data is read, so a cut or
//! forged file is refused up front, in words naming the tensor.

use super::Source;
use crate::error::{Result, WsaError};
use std::collections::BTreeMap;
use std::io::SeekFrom;
use std::path::Path;

/// Largest header accepted: the format's own limit (100 MB of JSON).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// How a tensor's values are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredType {
    F64,
    F32,
    F16,
    BF16,
    /// Integers, booleans and 8-bit floats: listed, never summarised or merged (counters,
    /// indices, quantised weights whose scale lives elsewhere).
    Other {
        name: String,
        bytes: usize,
    },
}

impl StoredType {
    fn parse(name: &str) -> Option<StoredType> {
        Some(match name {
            "F64" => StoredType::F64,
            "F32" => StoredType::F32,
            "F16" => StoredType::F16,
            "BF16" => StoredType::BF16,
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => StoredType::Other { name: name.into(), bytes: 1 },
            "I16" | "U16" => StoredType::Other { name: name.into(), bytes: 2 },
            "I32" | "U32" => StoredType::Other { name: name.into(), bytes: 4 },
            "I64" | "U64" => StoredType::Other { name: name.into(), bytes: 8 },
            _ => return None,
        })
    }

    /// The name safetensors gives the type ("F16", "I64").
    pub fn name(&self) -> &str {
        match self {
            StoredType::F64 => "F64",
            StoredType::F32 => "F32",
            StoredType::F16 => "F16",
            StoredType::BF16 => "BF16",
            StoredType::Other { name, .. } => name,
        }
    }

    pub fn bytes(&self) -> usize {
        match self {
            StoredType::F64 => 8,
            StoredType::F32 => 4,
            StoredType::F16 | StoredType::BF16 => 2,
            StoredType::Other { bytes, .. } => *bytes,
        }
    }

    /// Whether the values are floating point numbers the lab summarises and merges.
    pub fn is_float(&self) -> bool {
        !matches!(self, StoredType::Other { .. })
    }

    /// Decodes little-endian values of this type into `out` (appended) as f32; float64 is
    /// rounded to the nearest f32. Nothing for the types that are not floats.
    pub fn decode(&self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            StoredType::F32 => out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
            StoredType::F64 => out.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32),
            ),
            StoredType::F16 => {
                out.extend(bytes.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()))
            }
            StoredType::BF16 => {
                out.extend(bytes.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()))
            }
            StoredType::Other { .. } => {}
        }
    }

    /// Encodes f32 values in this type (rounded to the nearest representable value), appended
    /// to `out`. Only for float types.
    pub fn encode(&self, values: &[f32], out: &mut Vec<u8>) {
        match self {
            StoredType::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            StoredType::F64 => values.iter().for_each(|v| out.extend_from_slice(&f64::from(*v).to_le_bytes())),
            StoredType::F16 => {
                values.iter().for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes()))
            }
            StoredType::BF16 => {
                values.iter().for_each(|v| out.extend_from_slice(&half::bf16::from_f32(*v).to_le_bytes()))
            }
            StoredType::Other { .. } => {}
        }
    }
}

/// Whether a file starting with `start` (its first 9 bytes or more) is a PyTorch pickle:
/// `torch.save`'s zip archive (`PK\x03\x04`) or a bare pickle (protocol 2 to 5). A safetensors
/// file always has its JSON header's `{` at byte 8, which tells it apart from a pickle whose
/// first bytes happen to read as a header length (640, 896, ... bytes start `80 02`..`80 05`).
pub fn is_pickle(start: &[u8]) -> bool {
    start.get(8) != Some(&b'{') && (start.starts_with(b"PK\x03\x04") || matches!(start, [0x80, 2..=5, ..]))
}

/// Why a pickle is refused and the one line that converts it.
pub fn pickle_advice(origin: &Path) -> String {
    let name = origin.display();
    format!(
        "it is a PyTorch pickle (`torch.save`), which runs code when it is loaded, so WSA Lab reads only safetensors; convert it once with `python -c \"import torch, safetensors.torch as st; st.save_file(torch.load('{name}', weights_only=True), '{name}.safetensors')\"`"
    )
}

/// One tensor of a checkpoint: where its bytes are, not the bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorEntry {
    pub name: String,
    pub dtype: StoredType,
    pub shape: Vec<usize>,
    /// Byte offset of the first value from the start of the file.
    pub start: u64,
    /// Bytes of data.
    pub len: u64,
}

impl TensorEntry {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A checkpoint's table of contents, tensors in the order of their data in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub tensors: Vec<TensorEntry>,
    /// The free-form `__metadata__` strings (a framework's format tag, a layout).
    pub metadata: BTreeMap<String, String>,
}

impl Header {
    /// Reads and checks the header of the safetensors data in `source` (`origin` names it in
    /// errors), leaving the data unread.
    pub fn read(source: &mut impl Source, origin: &Path) -> Result<Header> {
        let bad = |reason: String| WsaError::CorruptModel { path: origin.to_path_buf(), reason };
        let io = |e| WsaError::io(origin, e);
        let file_len = source.seek(SeekFrom::End(0)).map_err(io)?;
        source.seek(SeekFrom::Start(0)).map_err(io)?;
        if file_len < 8 {
            return Err(bad(format!(
                "{file_len} bytes, shorter than the 8-byte header length: not a safetensors file, or cut short"
            )));
        }
        let mut start = vec![0u8; file_len.min(9) as usize];
        source.read_exact(&mut start).map_err(io)?;
        if is_pickle(&start) {
            return Err(WsaError::CorruptModel { path: origin.to_path_buf(), reason: pickle_advice(origin) });
        }
        let header_len = u64::from_le_bytes(start[..8].try_into().expect("8 bytes"));
        source.seek(SeekFrom::Start(8)).map_err(io)?;
        if header_len > MAX_HEADER_BYTES || header_len > file_len - 8 {
            return Err(bad(format!(
                "a header of {header_len} bytes in a file of {file_len}: not a safetensors file, or cut short"
            )));
        }
        let mut json = vec![0u8; header_len as usize];
        source.read_exact(&mut json).map_err(io)?;
        let data_start = 8 + header_len;
        let data_len = file_len - data_start;
        let entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&json)
            .map_err(|e| bad(format!("its header is not a JSON object ({e}): not a safetensors file, or damaged")))?;
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::new();
        for (name, value) in entries {
            if name == "__metadata__" {
                metadata = serde_json::from_value(value)
                    .map_err(|e| bad(format!("its `__metadata__` is not a map of strings ({e})")))?;
                continue;
            }
            tensors.push(Self::entry(name, &value, data_start, data_len).map_err(bad)?);
        }
        tensors.sort_by_key(|t| t.start);
        for pair in tensors.windows(2) {
            if pair[0].start + pair[0].len > pair[1].start {
                return Err(bad(format!("tensors `{}` and `{}` overlap", pair[0].name, pair[1].name)));
            }
        }
        Ok(Header { tensors, metadata })
    }

    /// One tensor's entry, checked: a known type, a shape whose size fits the byte range, a
    /// range inside the data.
    fn entry(
        name: String,
        value: &serde_json::Value,
        data_start: u64,
        data_len: u64,
    ) -> std::result::Result<TensorEntry, String> {
        let field = |key: &str| value.get(key).ok_or_else(|| format!("tensor `{name}` has no `{key}`"));
        let dtype_name = field("dtype")?.as_str().ok_or_else(|| format!("tensor `{name}`'s dtype is not text"))?;
        let dtype = StoredType::parse(dtype_name)
            .ok_or_else(|| format!("tensor `{name}` has type `{dtype_name}`, which WSA Lab does not read"))?;
        let shape: Vec<usize> = serde_json::from_value(field("shape")?.clone())
            .map_err(|_| format!("tensor `{name}`'s shape is not a list of sizes"))?;
        let offsets: [u64; 2] = serde_json::from_value(field("data_offsets")?.clone())
            .map_err(|_| format!("tensor `{name}`'s data_offsets are not two byte offsets"))?;
        let [begin, end] = offsets;
        let expected = shape
            .iter()
            .try_fold(dtype.bytes() as u64, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| format!("tensor `{name}`'s shape {shape:?} is too large"))?;
        if begin > end || end > data_len {
            return Err(format!(
                "tensor `{name}` claims bytes {begin}..{end} of {data_len} bytes of data: the file is cut short or damaged"
            ));
        }
        if end - begin != expected {
            return Err(format!(
                "tensor `{name}` ({} {shape:?}) needs {expected} bytes but has {}",
                dtype.name(),
                end - begin
            ));
        }
        // The byte count fits a u64; the value count must also fit this platform's usize (wasm32).
        usize::try_from(expected / dtype.bytes() as u64)
            .map_err(|_| format!("tensor `{name}`'s shape {shape:?} is too large for this platform"))?;
        Ok(TensorEntry { name, dtype, shape, start: data_start + begin, len: end - begin })
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Calls `each` with consecutive pieces of at most `piece_values` values of `entry`'s data,
/// read from `source`, so that a tensor of any size passes through a bounded buffer.
pub fn for_each_piece(
    source: &mut impl Source,
    origin: &Path,
    entry: &TensorEntry,
    piece_values: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<()> {
    let io = |e| WsaError::io(origin, e);
    source.seek(SeekFrom::Start(entry.start)).map_err(io)?;
    let step = (piece_values.max(1) * entry.dtype.bytes()) as u64;
    let mut buffer = vec![0u8; step.min(entry.len) as usize];
    let mut left = entry.len;
    while left > 0 {
        let take = step.min(left) as usize;
        source.read_exact(&mut buffer[..take]).map_err(io)?;
        each(&buffer[..take]);
        left -= take as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A safetensors file with the given header JSON and `data` bytes.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn read(bytes: Vec<u8>) -> Result<Header> {
        Header::read(&mut Cursor::new(bytes), Path::new("x.safetensors"))
    }

    #[test]
    fn a_header_lists_tensors_in_data_order_with_absolute_ranges() {
        let header = r#"{"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}"#;
        let parsed = read(file(header, &[0; 12])).expect("valid");
        let names: Vec<&str> = parsed.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(parsed.tensors[0].start, 8 + header.len() as u64);
        assert_eq!(parsed.tensors[1].dtype, StoredType::F16);
        assert_eq!(parsed.metadata["format"], "pt");
    }

    #[test]
    fn forged_or_cut_headers_are_refused_naming_the_tensor() {
        let cases = [
            (r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, "needs 12 bytes"),
            (r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 4, "cut short"),
            (r#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, 8, "type `Q4`, which WSA Lab does not read"),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                8,
                "overlap",
            ),
            (r#"{"a":{"dtype":"F32","shape":[2]}}"#, 8, "no `data_offsets`"),
            (r#"[1,2]"#, 0, "not a JSON object"),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#,
                8,
                "too large",
            ),
        ];
        for (header, data, needle) in cases {
            let error = read(file(header, &vec![0; data])).expect_err(header).to_string();
            assert!(error.contains(needle) && error.contains("x.safetensors"), "{header}: {error}");
        }
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0; 60]);
        let error = read(zip).expect_err("pickle").to_string();
        assert!(
            error.contains("PyTorch pickle") && error.contains("st.save_file(torch.load('x.safetensors'"),
            "{error}"
        );
        assert!(
            read(vec![0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0]).expect_err("pickle").to_string().contains("PyTorch pickle")
        );
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(read(huge).expect_err("huge").to_string().contains("header of"));
        assert!(read(vec![1, 2]).expect_err("short").to_string().contains("shorter than"));
    }

    #[test]
    fn half_types_round_trip_and_decode_exactly() {
        let values = [0.0f32, -1.5, 65504.0, 1e-7, 3.140625];
        for dtype in [StoredType::F16, StoredType::BF16, StoredType::F32, StoredType::F64] {
            let mut bytes = Vec::new();
            dtype.encode(&values, &mut bytes);
            assert_eq!(bytes.len(), values.len() * dtype.bytes());
            let mut back = Vec::new();
            dtype.decode(&bytes, &mut back);
            let mut again = Vec::new();
            dtype.encode(&back, &mut again);
            assert_eq!(again, bytes, "{dtype:?}: decoding then encoding changes nothing");
            assert_eq!(back[1], -1.5);
        }
        // 1 + 2^-11 lies halfway between two halves: ties go to the even one, 1.0.
        let mut bytes = Vec::new();
        StoredType::F16.encode(&[1.0 + 2f32.powi(-11)], &mut bytes);
        assert_eq!(bytes, half::f16::ONE.to_le_bytes());
    }

    #[test]
    fn a_header_whose_length_looks_like_a_pickle_is_read() {
        // Lengths 640 and 896 are stored as `80 02 ..` and `80 03 ..`, a pickle's first bytes.
        for length in [640usize, 896, 1152, 1408] {
            let mut header = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.to_string();
            header.push_str(&" ".repeat(length - header.len()));
            let parsed = read(file(&header, &[0; 4])).expect("a safetensors file, not a pickle");
            assert_eq!(parsed.tensors[0].name, "a", "header of {length} bytes");
        }
    }

    #[test]
    fn known_half_values_decode_exactly() {
        let decode = |bits: u16| {
            let mut out = Vec::new();
            StoredType::F16.decode(&bits.to_le_bytes(), &mut out);
            out[0]
        };
        assert_eq!(decode(0x3c00), 1.0);
        assert_eq!(decode(0xc000), -2.0);
        assert_eq!(decode(0x7bff), 65504.0);
        assert_eq!(decode(0x0001), 2f32.powi(-24));
        assert_eq!(decode(0x0400), 2f32.powi(-14));
        assert_eq!(decode(0x3555), 0.333_251_95);
        assert_eq!(decode(0x7c00), f32::INFINITY);
        assert_eq!(decode(0xfc00), f32::NEG_INFINITY);
        assert!(decode(0x7e00).is_nan());
        let mut out = Vec::new();
        // bfloat16 is the upper half of a float32.
        StoredType::BF16.decode(&0x3fc0u16.to_le_bytes(), &mut out);
        assert_eq!(out, [1.5]);
    }

    #[test]
    fn pieces_cover_a_tensor_once_in_order() {
        let header = r#"{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}}"#;
        let data: Vec<u8> = (0..5u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let bytes = file(header, &data);
        let parsed = read(bytes.clone()).expect("valid");
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for_each_piece(&mut Cursor::new(bytes), Path::new("x"), &parsed.tensors[0], 2, |piece| {
            sizes.push(piece.len());
            StoredType::F32.decode(piece, &mut seen);
        })
        .expect("read");
        assert_eq!(seen, [0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(sizes, [8, 8, 4]);
    }
}
