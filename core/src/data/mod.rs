//! Datasets: the embedded 8x8 digits, the embedded 5000-image subsets of the Fashion-MNIST and
//! MNIST test sets, seeded synthetic 2-D sets, the full IDX sets (Fashion-MNIST, MNIST)
//! fetched by `scripts/fetch-data.sh`, and the user's own files (`files`: CSV, NumPy, IDX,
//! CIFAR batches, image folders, read through a [`FileSource`]). Everything lives on the host as
//! `f32` rows; the trainer uploads a split to the compute device once.

mod digits;
pub mod files;
mod idx;
mod small;
pub mod source;
mod synthetic;

pub use files::{FileDataset, FileFormat, Normalisation};
pub use idx::{IdxArray, is_on_disk, parse_idx, parse_idx_file};
#[cfg(target_arch = "wasm32")]
pub use small::provide as provide_small;
pub use small::{SmallSet, load as load_small};
pub use source::{Disk, FileSource, Memory, default_source as default_files};
#[cfg(target_arch = "wasm32")]
pub use source::{forget_files, provide_file};
pub use synthetic::SyntheticKind;

use crate::error::{Result, WsaError};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which data an experiment uses. Plain serde, part of every experiment config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum DatasetSpec {
    /// 1797 8x8 digits embedded in the binary (UCI optdigits, CC BY 4.0).
    #[default]
    Digits,
    /// Fashion-MNIST (60k/10k, 28x28) from `data_dir/fashion-mnist`.
    FashionMnist,
    /// MNIST (60k/10k, 28x28) from `data_dir/mnist`.
    Mnist,
    /// The first 5000 Fashion-MNIST test images, embedded (MIT); split by `test_fraction`.
    FashionMnistSmall,
    /// The first 5000 MNIST test images, embedded (CC BY-SA 3.0); split by `test_fraction`.
    MnistSmall,
    /// Seeded 2-D points.
    Synthetic {
        kind: SyntheticKind,
        #[serde(default = "default_synthetic_samples")]
        samples: usize,
        #[serde(default = "default_noise")]
        noise: f64,
        #[serde(default = "default_synthetic_classes")]
        classes: usize,
    },
    /// The user's own files: `{"name": "file", "format": "csv", "train": "iris.csv", ...}`
    /// (see [`FileDataset`]). Natively read from the file system; on wasm32 from the files the
    /// page handed over ([`provide_file`]).
    File(FileDataset),
}

fn default_synthetic_samples() -> usize {
    1000
}
fn default_noise() -> f64 {
    0.1
}
fn default_synthetic_classes() -> usize {
    3
}

impl DatasetSpec {
    /// The short names [`DatasetSpec::from_name`] reads, in the order menus offer them.
    pub const NAMES: [&str; 9] = [
        "digits",
        "fashion-mnist",
        "mnist",
        "fashion-mnist-small",
        "mnist-small",
        "moons",
        "circles",
        "spirals",
        "blobs",
    ];

    /// Whether the set is read from `data_dir` (fetched by `scripts/fetch-data.sh`), which a
    /// web page cannot do; the others are embedded, generated or the user's own files (which a
    /// page holds in memory).
    pub fn is_fetched(&self) -> bool {
        matches!(self, DatasetSpec::FashionMnist | DatasetSpec::Mnist)
    }

    /// The image subset the set reads, if it is one.
    pub fn small_set(&self) -> Option<SmallSet> {
        match self {
            DatasetSpec::FashionMnistSmall => Some(SmallSet::FashionMnist),
            DatasetSpec::MnistSmall => Some(SmallSet::Mnist),
            _ => None,
        }
    }

    /// Parses the short names used on the command line.
    pub fn from_name(name: &str) -> Result<Self> {
        let synthetic = |kind| DatasetSpec::Synthetic {
            kind,
            samples: default_synthetic_samples(),
            noise: default_noise(),
            classes: if kind == SyntheticKind::Blobs || kind == SyntheticKind::Spirals { 3 } else { 2 },
        };
        Ok(match name {
            "digits" => DatasetSpec::Digits,
            "fashion-mnist" | "fashion_mnist" | "fmnist" => DatasetSpec::FashionMnist,
            "mnist" => DatasetSpec::Mnist,
            "fashion-mnist-small" => DatasetSpec::FashionMnistSmall,
            "mnist-small" => DatasetSpec::MnistSmall,
            "moons" => synthetic(SyntheticKind::Moons),
            "circles" => synthetic(SyntheticKind::Circles),
            "spirals" => synthetic(SyntheticKind::Spirals),
            "blobs" => synthetic(SyntheticKind::Blobs),
            other => {
                return Err(WsaError::invalid(
                    "dataset",
                    other,
                    &format!("unknown; choose one of {}", Self::NAMES.join(", ")),
                ));
            }
        })
    }

    /// The shape of one sample and the number of classes: for the built-in sets known without
    /// loading the data (the official Fashion-MNIST and MNIST files are 28x28); the user's files
    /// are read for it (but CIFAR's, whose format says it), so it fails where they cannot be.
    pub fn sample_shape_and_classes(&self) -> Result<(Vec<usize>, usize)> {
        Ok(match self {
            DatasetSpec::Digits => (vec![1, 8, 8], 10),
            DatasetSpec::FashionMnist
            | DatasetSpec::Mnist
            | DatasetSpec::FashionMnistSmall
            | DatasetSpec::MnistSmall => (vec![1, 28, 28], 10),
            DatasetSpec::Synthetic { classes, .. } => (vec![2], *classes),
            DatasetSpec::File(set) => return set.sample_shape_and_classes(&*source::default_source()),
        })
    }

    pub fn label(&self) -> String {
        match self {
            DatasetSpec::Digits => "digits".into(),
            DatasetSpec::FashionMnist => "fashion-mnist".into(),
            DatasetSpec::Mnist => "mnist".into(),
            DatasetSpec::FashionMnistSmall => "fashion-mnist-small".into(),
            DatasetSpec::MnistSmall => "mnist-small".into(),
            DatasetSpec::Synthetic { kind, .. } => kind.label().into(),
            DatasetSpec::File(set) => set.label(),
        }
    }
}

/// How the data is split and trimmed. Official splits are kept where a set has one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataConfig {
    pub dataset: DatasetSpec,
    /// Where fetched sets live (`scripts/fetch-data.sh` writes there).
    pub data_dir: PathBuf,
    /// Share held out for testing, for sets without an official test split.
    pub test_fraction: f64,
    /// Use at most this many training samples (a seeded subset); `None` = all.
    pub max_train: Option<usize>,
    /// Use at most this many test samples (a seeded subset); `None` = all.
    pub max_test: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetSpec::Digits,
            data_dir: PathBuf::from("data"),
            test_fraction: 0.25,
            max_train: None,
            max_test: None,
        }
    }
}

/// Labelled samples, row major: `features[i * dim .. (i + 1) * dim]` is sample i.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub features: Vec<f32>,
    pub labels: Vec<u32>,
    /// Shape of one sample: `[d]` for points, `[channels, height, width]` for images.
    pub sample_shape: Vec<usize>,
    pub num_classes: usize,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.sample_shape.iter().product()
    }

    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.features[i * d..(i + 1) * d]
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let d = self.dim();
        let mut features = Vec::with_capacity(indices.len() * d);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            features.extend_from_slice(self.sample(i));
            labels.push(self.labels[i]);
        }
        Dataset { features, labels, sample_shape: self.sample_shape.clone(), num_classes: self.num_classes }
    }

    /// Samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |reason: String| WsaError::CorruptDataset { path: origin.to_path_buf(), reason };
        if self.features.len() != self.len() * self.dim() {
            return Err(bad(format!(
                "{} feature values for {} samples of {} values",
                self.features.len(),
                self.len(),
                self.dim()
            )));
        }
        if let Some(&l) = self.labels.iter().find(|&&l| l as usize >= self.num_classes) {
            return Err(bad(format!("label {l} out of range 0..{}", self.num_classes)));
        }
        if self.features.iter().any(|v| !v.is_finite()) {
            return Err(bad("non-finite feature values".into()));
        }
        Ok(())
    }
}

/// A train/test pair, normalised with statistics of the training part only.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSplit {
    pub name: String,
    pub train: Dataset,
    pub test: Dataset,
}

/// Loads, splits (seeded), trims and normalises the data a config names; a file set from the
/// file system natively, from the files the page handed over on wasm32.
pub fn load(config: &DataConfig, seed: u64) -> Result<DataSplit> {
    load_from(config, seed, &*source::default_source())
}

/// [`load`], with a file set read from `file_source`.
pub fn load_from(config: &DataConfig, seed: u64, file_source: &dyn FileSource) -> Result<DataSplit> {
    if !(0.0 < config.test_fraction && config.test_fraction < 1.0) {
        return Err(WsaError::invalid("data.test_fraction", config.test_fraction, "must lie strictly between 0 and 1"));
    }
    if config.max_train == Some(0) || config.max_test == Some(0) {
        return Err(WsaError::invalid("data.max_train/max_test", 0, "must be at least 1 (or left out for all)"));
    }
    let mut standardise = true;
    let (mut train, mut test, images) = match &config.dataset {
        DatasetSpec::Digits => {
            let all = digits::load()?;
            let (train, test) = random_split(&all, config.test_fraction, seed);
            (train, test, true)
        }
        spec if spec.is_fetched() && cfg!(target_arch = "wasm32") => {
            let small = if config.dataset == DatasetSpec::Mnist { "mnist-small" } else { "fashion-mnist-small" };
            return Err(WsaError::invalid(
                "data.dataset",
                config.dataset.label(),
                &format!("the full set is read from disk, which a web page cannot do; choose {small} (embedded)"),
            ));
        }
        DatasetSpec::FashionMnist => {
            let (train, test) = idx::load_pair(&config.data_dir, "fashion-mnist")?;
            (train, test, true)
        }
        DatasetSpec::Mnist => {
            let (train, test) = idx::load_pair(&config.data_dir, "mnist")?;
            (train, test, true)
        }
        DatasetSpec::FashionMnistSmall | DatasetSpec::MnistSmall => {
            let set = if config.dataset == DatasetSpec::MnistSmall { SmallSet::Mnist } else { SmallSet::FashionMnist };
            let (train, test) = random_split(&small::load(set)?, config.test_fraction, seed);
            (train, test, true)
        }
        DatasetSpec::Synthetic { kind, samples, noise, classes } => {
            let all = synthetic::generate(*kind, *samples, *noise, *classes, seed)?;
            let (train, test) = random_split(&all, config.test_fraction, seed);
            (train, test, false)
        }
        DatasetSpec::File(set) => {
            let loaded = files::read(set, file_source)?;
            standardise = loaded.standardise;
            let (train, test) = match loaded.test {
                Some(test) => (loaded.train, test),
                None => random_split(&loaded.train, config.test_fraction, seed),
            };
            (train, test, loaded.images)
        }
    };
    if let Some(n) = config.max_train {
        train = seeded_subset(&train, n, seed, "train-subset");
    }
    if let Some(n) = config.max_test {
        test = seeded_subset(&test, n, seed, "test-subset");
    }
    if standardise {
        normalise(&mut train, &mut test, images);
    }
    Ok(DataSplit { name: config.dataset.label(), train, test })
}

fn random_split(all: &Dataset, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
    let mut order: Vec<usize> = (0..all.len()).collect();
    Rng::derive(seed, "train-test-split").shuffle(&mut order);
    let n_test = ((all.len() as f64) * test_fraction).round().clamp(1.0, (all.len() - 1) as f64) as usize;
    let (test_idx, train_idx) = order.split_at(n_test);
    (all.subset(train_idx), all.subset(test_idx))
}

fn seeded_subset(data: &Dataset, n: usize, seed: u64, label: &str) -> Dataset {
    if n >= data.len() {
        return data.clone();
    }
    let mut order: Vec<usize> = (0..data.len()).collect();
    Rng::derive(seed, label).shuffle(&mut order);
    let mut chosen = order[..n].to_vec();
    chosen.sort_unstable();
    data.subset(&chosen)
}

/// Images: one mean and std over all training pixels. Points: per feature.
fn normalise(train: &mut Dataset, test: &mut Dataset, images: bool) {
    let d = train.dim();
    let groups: Vec<Vec<usize>> = if images { vec![(0..d).collect()] } else { (0..d).map(|j| vec![j]).collect() };
    for group in groups {
        let (mut sum, mut sq, mut n) = (0.0f64, 0.0f64, 0usize);
        for i in 0..train.len() {
            for &j in &group {
                let v = f64::from(train.features[i * d + j]);
                sum += v;
                sq += v * v;
                n += 1;
            }
        }
        let mean = sum / n.max(1) as f64;
        // A feature constant over the training split (a border pixel of a CSV of images) is only
        // centred, as scikit-learn's StandardScaler does: dividing by its near-zero spread would
        // blow a test sample's few nonzero values up by a factor of a million.
        let std = ((sq / n.max(1) as f64) - mean * mean).max(0.0).sqrt();
        let std = if std < 1e-6 { 1.0 } else { std };
        for set in [&mut *train, &mut *test] {
            for i in 0..set.len() {
                for &j in &group {
                    let v = &mut set.features[i * d + j];
                    *v = ((f64::from(*v) - mean) / std) as f32;
                }
            }
        }
    }
}

/// Where a fetched set is expected, for messages and the fetch script.
pub fn dataset_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feature constant over the training split is centred, not divided by its zero spread:
    /// a test sample's other value stays its difference from the constant.
    #[test]
    fn a_feature_constant_in_training_is_only_centred() {
        let mut files = Memory::default();
        files.insert("train.csv", b"x,c,label\n1,7,0\n2,7,1\n3,7,0\n4,7,1\n".to_vec());
        files.insert("test.csv", b"x,c,label\n2.5,9,0\n".to_vec());
        let dataset = files::FileDataset {
            format: files::FileFormat::Csv {
                train: "train.csv".into(),
                test: Some("test.csv".into()),
                label_column: None,
                header: files::Header::Auto,
            },
            normalisation: files::Normalisation::default(),
        };
        let config = DataConfig { dataset: DatasetSpec::File(dataset), ..DataConfig::default() };
        let split = load_from(&config, 1, &files).expect("the CSV pair");
        let constant: Vec<f32> = split.train.features.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(constant, [0.0; 4], "centred");
        assert_eq!(split.test.features[1], 2.0, "9 - 7, not divided by a spread of zero");
        let (mean, std) = (2.5f64, 1.25f64.sqrt());
        assert!((f64::from(split.test.features[0]) - (2.5 - mean) / std).abs() < 1e-6);
    }

    #[test]
    fn digits_split_is_seeded_normalised_and_complete() {
        let config = DataConfig::default();
        let a = load(&config, 3).expect("digits");
        let b = load(&config, 3).expect("digits");
        let c = load(&config, 4).expect("digits");
        assert_eq!(a, b);
        assert_ne!(a.train.labels, c.train.labels);
        assert_eq!(a.train.len() + a.test.len(), 1797);
        assert_eq!(a.train.sample_shape, vec![1, 8, 8]);
        let n = a.train.features.len() as f64;
        let mean = a.train.features.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = a.train.features.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "mean {mean} var {var}");
    }

    #[test]
    fn every_listed_name_parses_and_is_its_label() {
        for name in DatasetSpec::NAMES {
            assert_eq!(DatasetSpec::from_name(name).expect(name).label(), name);
        }
        let err = DatasetSpec::from_name("cifar").expect_err("unknown").to_string();
        assert!(err.contains("fashion-mnist-small") && err.contains("blobs"), "{err}");
    }

    #[test]
    fn missing_idx_set_names_the_fetch_command() {
        let config = DataConfig {
            dataset: DatasetSpec::FashionMnist,
            data_dir: PathBuf::from("/nonexistent/wsa-lab"),
            ..DataConfig::default()
        };
        let err = load(&config, 0).expect_err("must fail");
        let msg = err.to_string();
        assert!(matches!(err, WsaError::MissingDataset { .. }), "{msg}");
        assert!(msg.contains("scripts/fetch-data.sh"), "{msg}");
    }

    #[test]
    fn bad_split_settings_are_refused() {
        let config = DataConfig { test_fraction: 1.5, ..DataConfig::default() };
        assert!(matches!(load(&config, 0), Err(WsaError::InvalidConfig { .. })));
        let config = DataConfig { max_train: Some(0), ..DataConfig::default() };
        assert!(matches!(load(&config, 0), Err(WsaError::InvalidConfig { .. })));
    }
}
