//! The IDX format of MNIST and Fashion-MNIST: `00 00 <type> <ndim>`, ndim big-endian u32
//! dimensions, then the data. Files may be gzipped (Fashion-MNIST ships them so). Read here for
//! the fetched and embedded sets; a user's IDX pair goes through the same parser (`files`).

use super::Dataset;
use crate::error::{Result, WsaError};
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
    /// Whether the elements were u8 (pixels 0..=255) rather than f32.
    pub eight_bit: bool,
}

/// Parses an IDX byte buffer (u8 or big-endian f32 elements).
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("missing the IDX magic number (00 00 type ndim)".into());
    }
    let (elem_size, kind) = match bytes[2] {
        0x08 => (1usize, 0x08),
        0x0D => (4usize, 0x0D),
        t => return Err(format!("unsupported IDX element type 0x{t:02x} (only u8 and f32 are read)")),
    };
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if ndim == 0 || bytes.len() < header {
        return Err(format!("truncated header ({} bytes for {ndim} dimensions)", bytes.len()));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or("dimensions overflow")?;
    let expected = count.checked_mul(elem_size).and_then(|n| n.checked_add(header)).ok_or("dimensions overflow")?;
    if bytes.len() != expected {
        return Err(format!("{} bytes, but the header {dims:?} implies {expected}", bytes.len()));
    }
    let body = &bytes[header..];
    let data = if kind == 0x08 {
        body.iter().map(|&b| f32::from(b)).collect()
    } else {
        body.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    Ok(IdxArray { dims, data, eight_bit: kind == 0x08 })
}

/// The files `stem` may be in `dir`: as is, or gzipped.
fn candidates(dir: &Path, stem: &str) -> [std::path::PathBuf; 2] {
    [dir.join(stem), dir.join(format!("{stem}.gz"))]
}

/// Whether the fetched set `set` is in `data_dir` (its training images, as [`load_pair`] reads
/// them), without reading it.
pub fn is_on_disk(data_dir: &Path, set: &str) -> bool {
    candidates(&super::dataset_dir(data_dir, set), "train-images-idx3-ubyte").iter().any(|p| p.is_file())
}

fn read_idx(dir: &Path, stem: &str, set: &str) -> Result<IdxArray> {
    let candidates = candidates(dir, stem);
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(WsaError::MissingDataset { name: set.to_string(), path: candidates[1].clone() });
    };
    let raw = std::fs::read(path).map_err(|e| WsaError::io(path, e))?;
    parse_idx_file(&raw, path)
}

/// Parses IDX bytes (the file `origin`), gunzipping them first when they start with the gzip
/// magic; errors name the file.
pub fn parse_idx_file(raw: &[u8], origin: &Path) -> Result<IdxArray> {
    parse_idx_bytes(raw, |reason| WsaError::CorruptDataset { path: origin.to_path_buf(), reason })
}

/// Parses IDX bytes, gunzipped first when they start with the gzip magic; `bad` turns what is
/// wrong into the error (a fetched file's, or a user's).
pub(super) fn parse_idx_bytes(raw: &[u8], bad: impl Fn(String) -> WsaError) -> Result<IdxArray> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw).read_to_end(&mut out).map_err(|e| bad(format!("gzip: {e}")))?;
        parse_idx(&out).map_err(bad)
    } else {
        parse_idx(raw).map_err(bad)
    }
}

fn images_and_labels(dir: &Path, set: &str, prefix: &str) -> Result<Dataset> {
    let images = read_idx(dir, &format!("{prefix}-images-idx3-ubyte"), set)?;
    let labels = read_idx(dir, &format!("{prefix}-labels-idx1-ubyte"), set)?;
    labelled_images(images, labels, &dir.join(format!("{prefix}-*-ubyte")))
}

/// Pairs an IDX image array (n x h x w, u8 pixels) with its labels; pixels scaled to 0..1.
pub(super) fn labelled_images(images: IdxArray, labels: IdxArray, origin: &Path) -> Result<Dataset> {
    let bad = |reason: String| WsaError::CorruptDataset { path: origin.to_path_buf(), reason };
    if images.dims.len() != 3 || labels.dims.len() != 1 || images.dims[0] != labels.dims[0] {
        return Err(bad(format!("image dims {:?} do not match label dims {:?}", images.dims, labels.dims)));
    }
    let data = Dataset {
        features: images.data.iter().map(|v| v / 255.0).collect(),
        labels: labels.data.iter().map(|&v| v as u32).collect(),
        sample_shape: vec![1, images.dims[1], images.dims[2]],
        num_classes: 10,
    };
    data.validate(origin)?;
    Ok(data)
}

/// Loads `data_dir/<set>/{train,t10k}-{images,labels}-idx?-ubyte[.gz]`.
pub fn load_pair(data_dir: &Path, set: &str) -> Result<(Dataset, Dataset)> {
    let dir = super::dataset_dir(data_dir, set);
    Ok((images_and_labels(&dir, set, "train")?, images_and_labels(&dir, set, "t10k")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_u8(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_u8_and_f32_arrays() {
        let a = parse_idx(&idx_u8(&[2, 2], &[1, 2, 3, 4])).expect("parse");
        assert_eq!(a.dims, vec![2, 2]);
        assert_eq!(a.data, vec![1.0, 2.0, 3.0, 4.0]);
        let mut f = vec![0, 0, 0x0D, 1, 0, 0, 0, 2];
        f.extend_from_slice(&1.5f32.to_be_bytes());
        f.extend_from_slice(&(-2.0f32).to_be_bytes());
        assert_eq!(parse_idx(&f).expect("parse").data, vec![1.5, -2.0]);
    }

    #[test]
    fn refuses_truncated_and_foreign_files() {
        let mut truncated = idx_u8(&[3], &[1, 2, 3]);
        truncated.pop();
        assert!(parse_idx(&truncated).expect_err("truncated").contains("implies"));
        assert!(parse_idx(b"PK\x03\x04zip").is_err());
        assert!(parse_idx(&[0, 0, 0x0B, 1, 0, 0, 0, 1, 0, 0]).expect_err("i8 type").contains("unsupported"));
    }

    #[test]
    fn reads_a_gzipped_pair_from_disk() {
        let dir = std::env::temp_dir().join(format!("wsa-idx-{}", std::process::id()));
        let set = dir.join("tiny");
        std::fs::create_dir_all(&set).expect("mkdir");
        assert!(!is_on_disk(&dir, "tiny"), "an empty folder holds no set");
        let write_gz = |name: &str, bytes: Vec<u8>| {
            use std::io::Write;
            let file = std::fs::File::create(set.join(name)).expect("create");
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            gz.write_all(&bytes).expect("write");
            gz.finish().expect("finish");
        };
        for prefix in ["train", "t10k"] {
            write_gz(&format!("{prefix}-images-idx3-ubyte.gz"), idx_u8(&[2, 2, 2], &[0, 255, 0, 255, 255, 0, 255, 0]));
            write_gz(&format!("{prefix}-labels-idx1-ubyte.gz"), idx_u8(&[2], &[3, 9]));
        }
        assert!(is_on_disk(&dir, "tiny"));
        let (train, test) = load_pair(&dir, "tiny").expect("load");
        assert_eq!(train.labels, vec![3, 9]);
        assert_eq!(test.sample_shape, vec![1, 2, 2]);
        assert_eq!(train.features[1], 1.0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
