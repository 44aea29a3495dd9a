//! The binary batches of CIFAR-10 (`data_batch_1.bin`..`data_batch_5.bin`, `test_batch.bin`) and
//! CIFAR-100 (`train.bin`, `test.bin`): fixed-size records of the label byte(s) — CIFAR-100 has
//! a coarse then a fine label — and 3072 pixel bytes, the 32×32 red, then green, then blue
//! planes (channel major, as the samples are kept).

use super::{CifarLabels, Labels, Samples, bad};
use crate::error::Result;
use std::path::Path;

/// Pixel bytes per record: 3 channels of 32×32.
pub const RECORD_PIXELS: usize = 3 * 32 * 32;

/// Parses one batch file's bytes (the file `origin`); `labels` says the record layout and which
/// label byte is read.
pub fn parse_cifar(bytes: &[u8], origin: &Path, labels: CifarLabels) -> Result<Samples> {
    let record = labels.label_bytes() + RECORD_PIXELS;
    if bytes.is_empty() {
        return Err(bad(origin, "is empty"));
    }
    if !bytes.len().is_multiple_of(record) {
        let other = if labels.label_bytes() == 1 { "CIFAR-100's 3074" } else { "CIFAR-10's 3073" };
        return Err(bad(
            origin,
            format!(
                "holds {} bytes, not a whole number of {record}-byte {} records (is it a batch of {other}-byte records?)",
                bytes.len(),
                labels.label()
            ),
        ));
    }
    let count = bytes.len() / record;
    let mut features = Vec::with_capacity(count * RECORD_PIXELS);
    let mut numbers = Vec::with_capacity(count);
    for (i, chunk) in bytes.chunks_exact(record).enumerate() {
        let label = chunk[labels.label_offset()];
        if usize::from(label) >= labels.classes() {
            return Err(bad(
                origin,
                format!("record {i} has label {label}, beyond the {} classes of {}", labels.classes(), labels.label()),
            ));
        }
        numbers.push(u32::from(label));
        features.extend(chunk[labels.label_bytes()..].iter().map(|&b| f32::from(b)));
    }
    Ok(Samples { features, sample_shape: vec![3, 32, 32], labels: Labels::Numbers(numbers), eight_bit: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_of_either_set_and_refuses_cut_files() {
        let mut bytes = vec![7u8];
        bytes.extend((0..RECORD_PIXELS).map(|i| (i % 256) as u8));
        let s = parse_cifar(&bytes, Path::new("data_batch_1.bin"), CifarLabels::Cifar10).expect("a record");
        assert_eq!((s.labels, s.sample_shape), (Labels::Numbers(vec![7]), vec![3, 32, 32]));
        assert_eq!((s.features[0], s.features[1024], s.features[3071]), (0.0, 0.0, 255.0));
        let mut hundred = vec![19u8, 99];
        hundred.extend(vec![0u8; RECORD_PIXELS]);
        let fine = parse_cifar(&hundred, Path::new("train.bin"), CifarLabels::Cifar100Fine).expect("fine");
        let coarse = parse_cifar(&hundred, Path::new("train.bin"), CifarLabels::Cifar100Coarse).expect("coarse");
        assert_eq!((fine.labels, coarse.labels), (Labels::Numbers(vec![99]), Labels::Numbers(vec![19])));
        let err = parse_cifar(&hundred, Path::new("train.bin"), CifarLabels::Cifar10).expect_err("3074-byte records");
        assert!(err.to_string().contains("3073-byte CIFAR-10 records"), "{err}");
        let err = parse_cifar(&bytes[..100], Path::new("b.bin"), CifarLabels::Cifar10).expect_err("cut");
        assert!(err.to_string().starts_with("data file b.bin: holds 100 bytes"), "{err}");
        bytes[0] = 10;
        let err = parse_cifar(&bytes, Path::new("b.bin"), CifarLabels::Cifar10).expect_err("label 10");
        assert!(err.to_string().contains("record 0 has label 10"), "{err}");
    }
}
