//! The embedded default set: 1797 UCI optdigits samples (see assets/digits/LICENSE.md).

use super::Dataset;
use crate::error::{Result, WsaError};
use std::io::Read;
use std::path::PathBuf;

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../assets/digits/digits.csv.gz");

pub fn load() -> Result<Dataset> {
    let origin = PathBuf::from("assets/digits/digits.csv.gz (embedded)");
    let bad = |reason: String| WsaError::CorruptDataset { path: origin.clone(), reason };
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ).read_to_string(&mut text).map_err(|e| bad(format!("gzip: {e}")))?;
    let mut features = Vec::with_capacity(1797 * 64);
    let mut labels = Vec::with_capacity(1797);
    for (row, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let values: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("row {row}: {e}")))?;
        if values.len() != 65 {
            return Err(bad(format!("row {row} has {} values, expected 65", values.len())));
        }
        features.extend_from_slice(&values[..64]);
        labels.push(values[64] as u32);
    }
    let data = Dataset { features, labels, sample_shape: vec![1, 8, 8], num_classes: 10 };
    data.validate(&origin)?;
    Ok(data)
}
