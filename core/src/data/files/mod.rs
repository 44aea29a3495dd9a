//! Data sets read from the user's own files: CSV tables, NumPy `.npy`/`.npz` arrays, IDX pairs,
//! the CIFAR-10/100 binary batches and folders of PNG/JPEG images with one subfolder per class.
//! Which files, in which format, how labels and values are read, and the test split travel in the
//! config ([`FileDataset`]), so a run says exactly what it read and reproduces. Every reader takes
//! bytes and a name for its messages; files are read and folders listed only through a
//! [`FileSource`], so a web page can hand in files it holds in memory. Each refusal is a
//! [`WsaError::BadDataFile`] naming the file and where in it the problem lies.

mod cifar;
mod csv;
mod images;
mod npy;

pub use cifar::{RECORD_PIXELS, parse_cifar};
pub use csv::{CsvOptions, parse_csv};
pub use images::{Image, decode_image};
pub use npy::{NpyArray, NpyValues, parse_npy, parse_npz};

use super::Dataset;
use super::idx::{IdxArray, parse_idx_bytes};
use super::source::FileSource;
use crate::error::{Result, WsaError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// More classes than this is taken for a wrong label column (a feature, an id), not a task.
pub const MAX_CLASSES: usize = 10_000;

/// A data set in the user's files: the format with its files and options, and how values are
/// normalised. Plain serde, part of the config: `{"name": "file", "format": "csv", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileDataset {
    #[serde(flatten)]
    pub format: FileFormat,
    #[serde(default)]
    pub normalisation: Normalisation,
}

/// The formats read, each with its training files and, optionally, files of a given test split
/// (`test`: `None` splits the training files by `data.test_fraction`, seeded by the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum FileFormat {
    /// Comma-separated numbers, one sample a line, one column the label (see [`CsvOptions`]).
    Csv {
        train: PathBuf,
        #[serde(default)]
        test: Option<PathBuf>,
        /// The label column by name (needs a header) or index (from 0); `None`: the last.
        #[serde(default)]
        label_column: Option<LabelColumn>,
        #[serde(default)]
        header: Header,
    },
    /// Two `.npy` arrays: features (`N×D`, `N×H×W` or `N×C×H×W`) and labels (`N`).
    Npy {
        train: ArrayPair,
        #[serde(default)]
        test: Option<ArrayPair>,
    },
    /// A `.npz` archive (NumPy's `savez`/`savez_compressed`) holding features and labels. Which
    /// arrays: `features` and `labels` when set; else `x` and `y`; else `x_train` and `y_train`
    /// (with `x_test` and `y_test` as the test split when the archive has them, as Keras'
    /// `mnist.npz` does); else the only two arrays, the one-dimensional one the labels.
    Npz {
        train: PathBuf,
        #[serde(default)]
        test: Option<PathBuf>,
        #[serde(default)]
        features: Option<String>,
        #[serde(default)]
        labels: Option<String>,
    },
    /// An IDX pair (the format of MNIST): images (`N×H×W`, also `N×D` or `N×C×H×W`; `u8` or
    /// `f32`) and labels (`N`), each raw or gzipped.
    Idx {
        train: IdxPair,
        #[serde(default)]
        test: Option<IdxPair>,
    },
    /// The binary batches of CIFAR-10 (`data_batch_1.bin`..., `test_batch.bin`) or CIFAR-100
    /// (`train.bin`, `test.bin`): records of the label byte(s) and 3×32×32 pixels, channel major.
    Cifar {
        train: Vec<PathBuf>,
        #[serde(default)]
        test: Option<Vec<PathBuf>>,
        #[serde(default)]
        labels: CifarLabels,
    },
    /// A folder with one subfolder per class (its name), holding PNG or JPEG images of one size,
    /// grayscale or RGB (an alpha channel is dropped).
    ImageFolder {
        train: PathBuf,
        #[serde(default)]
        test: Option<PathBuf>,
    },
}

/// The two `.npy` files of a split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArrayPair {
    pub features: PathBuf,
    pub labels: PathBuf,
}

/// The two IDX files of a split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdxPair {
    pub images: PathBuf,
    pub labels: PathBuf,
}

/// A CSV's label column: its index (from 0) or its name in the header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelColumn {
    Index(usize),
    Name(String),
}

/// Whether a CSV's first line names the columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Header {
    /// A header when a cell of the first line outside the label column holds text that is not
    /// a number (or when the label column is given by name).
    #[default]
    Auto,
    Present,
    Absent,
}

/// Which labels of the CIFAR records are read, and so how many classes there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CifarLabels {
    /// CIFAR-10: one label byte, 10 classes.
    #[default]
    #[serde(rename = "cifar-10")]
    Cifar10,
    /// CIFAR-100's fine labels (the second of two label bytes): 100 classes.
    #[serde(rename = "cifar-100-fine")]
    Cifar100Fine,
    /// CIFAR-100's coarse labels (the first label byte): 20 superclasses.
    #[serde(rename = "cifar-100-coarse")]
    Cifar100Coarse,
}

impl CifarLabels {
    /// Label bytes before each record's pixels.
    pub fn label_bytes(self) -> usize {
        match self {
            CifarLabels::Cifar10 => 1,
            CifarLabels::Cifar100Fine | CifarLabels::Cifar100Coarse => 2,
        }
    }

    /// Which of the label bytes is the label.
    pub fn label_offset(self) -> usize {
        usize::from(self == CifarLabels::Cifar100Fine)
    }

    /// The classes of the set, whatever labels a file happens to hold.
    pub fn classes(self) -> usize {
        match self {
            CifarLabels::Cifar10 => 10,
            CifarLabels::Cifar100Fine => 100,
            CifarLabels::Cifar100Coarse => 20,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CifarLabels::Cifar10 => "CIFAR-10",
            CifarLabels::Cifar100Fine => "CIFAR-100 (fine labels)",
            CifarLabels::Cifar100Coarse => "CIFAR-100 (coarse labels)",
        }
    }
}

/// How the values are normalised: divided by a constant, then, by default, standardised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Normalisation {
    /// Every value is first divided by this. `None`: 255 where the values are 8-bit pixels (IDX
    /// and NumPy `uint8` arrays, CIFAR batches, PNG/JPEG images), 1 otherwise (CSV, other arrays).
    pub divide_by: Option<f64>,
    /// Then standardised with the training split's mean and standard deviation: one pair over
    /// all values for images (samples of channels×height×width), one per feature otherwise;
    /// what the built-in sets get (an IDX pair of MNIST files gives `mnist`'s numbers).
    pub standardise: bool,
}

impl Default for Normalisation {
    fn default() -> Self {
        Self { divide_by: None, standardise: true }
    }
}

impl Normalisation {
    /// What is done to the values, in words.
    pub fn label(&self) -> String {
        let divided = match self.divide_by {
            Some(d) => format!("values divided by {d}"),
            None => "8-bit pixels divided by 255, other values as they are".to_string(),
        };
        if self.standardise { format!("{divided}, then standardised on the training split") } else { divided }
    }
}

impl FileDataset {
    /// The training file's (or folder's) name.
    pub fn label(&self) -> String {
        let path = match &self.format {
            FileFormat::Csv { train, .. } | FileFormat::Npz { train, .. } | FileFormat::ImageFolder { train, .. } => {
                train.as_path()
            }
            FileFormat::Npy { train, .. } => train.features.as_path(),
            FileFormat::Idx { train, .. } => train.images.as_path(),
            FileFormat::Cifar { train, .. } => train.first().map_or(Path::new("cifar"), PathBuf::as_path),
        };
        crate::io::file_name(path)
    }

    /// A data set from one path as a user names it on the command line, the format from its
    /// kind: a folder of class folders, a `.csv` table (its label column `label_column`, by
    /// default the last), a `.npz` archive, or CIFAR `.bin` batches (CIFAR-100's `train.bin` and
    /// `test.bin` by their names, fine labels). `test`, when given, is the test split in the same
    /// format. The pairs (`.npy`, IDX) need two files per split: those take a config.
    pub fn from_path(train: &Path, test: Option<&Path>, label_column: Option<LabelColumn>) -> Result<FileDataset> {
        let kind = |path: &Path| -> Result<FileKind> {
            if !path.exists() {
                return Err(WsaError::BadDataFile {
                    path: path.to_path_buf(),
                    reason: "no such file or folder".into(),
                });
            }
            FileKind::of(path, path.is_dir())
        };
        let train_kind = kind(train)?;
        if let Some(test) = test
            && kind(test)? != train_kind
        {
            return Err(WsaError::invalid(
                "--data-test",
                test.display(),
                &format!("must be in the format of --data {}", train.display()),
            ));
        }
        if label_column.is_some() && train_kind != FileKind::Csv {
            return Err(WsaError::invalid(
                "--label-column",
                train.display(),
                "only a CSV table has a label column to choose",
            ));
        }
        Ok(Self::of_kind(train_kind, train, test, label_column))
    }

    /// A data set of one file (or folder, `is_folder`) a user handed over by name, without
    /// looking on a disk: how the app takes a dropped file, which in the page exists only in
    /// memory. The rules of [`from_path`](Self::from_path); no test split (the run splits it).
    pub fn of_given_file(path: &Path, is_folder: bool) -> Result<FileDataset> {
        Ok(Self::of_kind(FileKind::of(path, is_folder)?, path, None, None))
    }

    fn of_kind(kind: FileKind, train: &Path, test: Option<&Path>, label_column: Option<LabelColumn>) -> FileDataset {
        let owned = |p: &Path| p.to_path_buf();
        let format = match kind {
            FileKind::Folder => FileFormat::ImageFolder { train: owned(train), test: test.map(owned) },
            FileKind::Csv => {
                FileFormat::Csv { train: owned(train), test: test.map(owned), label_column, header: Header::Auto }
            }
            FileKind::Npz => {
                FileFormat::Npz { train: owned(train), test: test.map(owned), features: None, labels: None }
            }
            FileKind::CifarBatch => {
                let cifar_100 = train.file_name().is_some_and(|n| n == "train.bin" || n == "test.bin");
                let labels = if cifar_100 { CifarLabels::Cifar100Fine } else { CifarLabels::Cifar10 };
                FileFormat::Cifar { train: vec![owned(train)], test: test.map(|t| vec![owned(t)]), labels }
            }
        };
        FileDataset { format, normalisation: Normalisation::default() }
    }

    /// The shape of one sample and the number of classes: for CIFAR from the format alone,
    /// otherwise from reading the files.
    pub fn sample_shape_and_classes(&self, source: &dyn FileSource) -> Result<(Vec<usize>, usize)> {
        if let FileFormat::Cifar { labels, .. } = &self.format {
            return Ok((vec![3, 32, 32], labels.classes()));
        }
        let loaded = read(self, source)?;
        Ok((loaded.train.sample_shape, loaded.train.num_classes))
    }

    fn validate(&self) -> Result<()> {
        if let Some(d) = self.normalisation.divide_by
            && !(d > 0.0 && (d as f32).is_normal())
        {
            return Err(WsaError::invalid(
                "data.dataset.normalisation.divide_by",
                d,
                "must be a positive number (or left out for the format's default)",
            ));
        }
        if let FileFormat::Cifar { train, test, .. } = &self.format
            && (train.is_empty() || test.as_ref().is_some_and(Vec::is_empty))
        {
            return Err(WsaError::invalid("data.dataset.train/test", "[]", "must list at least one batch file"));
        }
        Ok(())
    }
}

/// What one path given as a data set is, by its name (and whether it is a folder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Folder,
    Csv,
    Npz,
    CifarBatch,
}

impl FileKind {
    fn of(path: &Path, is_folder: bool) -> Result<FileKind> {
        if is_folder {
            return Ok(FileKind::Folder);
        }
        let refused = |reason: &str| Err(WsaError::BadDataFile { path: path.to_path_buf(), reason: reason.into() });
        if path.to_string_lossy().ends_with(".tar.gz") {
            return refused("an archive: unpack it, then give its data files (CIFAR: data_batch_1.bin ...) or folder");
        }
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(FileKind::Csv),
            Some("npz") => Ok(FileKind::Npz),
            Some("bin") => Ok(FileKind::CifarBatch),
            Some("npy") | Some("gz") | None | Some("idx") | Some("idx3-ubyte") | Some("idx1-ubyte") => refused(
                "an .npy or IDX set is two files per split (features and labels): name them in a config file (docs/datasets.md, \"Your own data\")",
            ),
            Some(other) => refused(&format!(
                "a .{other} file is no data format WSA Lab reads; give a .csv, .npz, CIFAR .bin batch or a folder of class folders"
            )),
        }
    }
}

/// What one split's files hold, before classes are numbered and values divided.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Row major, as [`Dataset::features`].
    pub features: Vec<f32>,
    pub sample_shape: Vec<usize>,
    pub labels: Labels,
    /// Whether the values are 8-bit pixels (0..=255), which the default normalisation divides
    /// by 255.
    pub eight_bit: bool,
}

/// Labels as a file holds them.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// Class numbers.
    Numbers(Vec<u32>),
    /// A CSV's label cells: class numbers where every cell of the set (training and test files)
    /// is a whole number ≥ 0, class names otherwise, numbered in sorted (byte) order.
    Cells(Vec<String>),
    /// The class folder of each image: names numbered in sorted order (numerically where every
    /// name is a whole number, so `10` comes after `9`).
    Folders(Vec<String>),
}

impl Labels {
    fn len(&self) -> usize {
        match self {
            Labels::Numbers(v) => v.len(),
            Labels::Cells(v) | Labels::Folders(v) => v.len(),
        }
    }
}

impl Samples {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Class folder names in class order: sorted, numerically where every name is a whole number
/// (`10` after `9`).
fn folder_order(names: &mut [String]) {
    names.sort();
    if names.iter().all(|n| n.parse::<u64>().is_ok()) {
        names.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    }
}

/// A refusal of the file `origin`.
fn bad(origin: &Path, reason: impl Into<String>) -> WsaError {
    WsaError::BadDataFile { path: origin.to_path_buf(), reason: reason.into() }
}

/// A sample shape as `3x32x32`.
fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
}

/// A file set read: the training (or whole) set and the given test split, values divided.
pub(super) struct Loaded {
    pub train: Dataset,
    pub test: Option<Dataset>,
    /// Whether samples are images (channels×height×width): standardised over all values.
    pub images: bool,
    pub standardise: bool,
}

/// Reads the set's files from `source`, checks them and numbers their classes.
pub(super) fn read(set: &FileDataset, source: &dyn FileSource) -> Result<Loaded> {
    set.validate()?;
    type Split = (Samples, PathBuf);
    let (train, test, fixed_classes): (Split, Option<Split>, Option<usize>) = match &set.format {
        FileFormat::Csv { train, test, label_column, header } => {
            let options = CsvOptions { label_column: label_column.clone(), header: *header };
            let read = |path: &PathBuf| -> Result<Split> {
                Ok((parse_csv(&source.read(path)?, path, &options)?, path.clone()))
            };
            (read(train)?, test.as_ref().map(read).transpose()?, None)
        }
        FileFormat::Npy { train, test } => {
            let read = |pair: &ArrayPair| -> Result<Split> {
                let features = parse_npy(&source.read(&pair.features)?, &pair.features)?;
                let labels = parse_npy(&source.read(&pair.labels)?, &pair.labels)?;
                Ok((npy::samples(features, labels, &pair.features, &pair.labels)?, pair.features.clone()))
            };
            (read(train)?, test.as_ref().map(read).transpose()?, None)
        }
        FileFormat::Npz { train, test, features, labels } => {
            let names = (features.as_deref(), labels.as_deref());
            let (train_split, archive_test) = npy::read_npz(&source.read(train)?, train, names)?;
            let test = match test {
                Some(path) => {
                    let (own, its_test) = npy::read_npz(&source.read(path)?, path, names)?;
                    Some(its_test.unwrap_or(own))
                }
                None => archive_test,
            };
            (train_split, test, None)
        }
        FileFormat::Idx { train, test } => {
            let read = |pair: &IdxPair| -> Result<Split> {
                let images = parse_idx_bytes(&source.read(&pair.images)?, |r| bad(&pair.images, r))?;
                let labels = parse_idx_bytes(&source.read(&pair.labels)?, |r| bad(&pair.labels, r))?;
                Ok((idx_samples(images, labels, pair)?, pair.images.clone()))
            };
            (read(train)?, test.as_ref().map(read).transpose()?, None)
        }
        FileFormat::Cifar { train, test, labels } => {
            // The batches one after the other (`validate` made sure there is one).
            let read = |paths: &Vec<PathBuf>| -> Result<Split> {
                let (mut features, mut numbers) = (Vec::new(), Vec::new());
                for path in paths {
                    let batch = parse_cifar(&source.read(path)?, path, *labels)?;
                    features.extend(batch.features);
                    if let Labels::Numbers(n) = batch.labels {
                        numbers.extend(n);
                    }
                }
                let samples = Samples {
                    features,
                    sample_shape: vec![3, 32, 32],
                    labels: Labels::Numbers(numbers),
                    eight_bit: true,
                };
                Ok((samples, paths.first().cloned().unwrap_or_default()))
            };
            (read(train)?, test.as_ref().map(read).transpose()?, Some(labels.classes()))
        }
        FileFormat::ImageFolder { train, test } => {
            let read = |dir: &PathBuf| -> Result<Split> { Ok((images::read_folder(source, dir)?, dir.clone())) };
            (read(train)?, test.as_ref().map(read).transpose()?, None)
        }
    };
    finish(train, test, fixed_classes, set.normalisation)
}

/// An IDX pair as samples: images `N×H×W` (or `N×D`, `N×C×H×W`), labels `N`.
fn idx_samples(images: IdxArray, labels: IdxArray, pair: &IdxPair) -> Result<Samples> {
    let sample_shape = match images.dims.as_slice() {
        [_, d] => vec![*d],
        [_, h, w] => vec![1, *h, *w],
        [_, c, h, w] => vec![*c, *h, *w],
        dims => {
            return Err(bad(
                &pair.images,
                format!("holds an array of {dims:?}; images are N x H x W (or N x D, N x C x H x W)"),
            ));
        }
    };
    let [n_labels] = labels.dims.as_slice() else {
        return Err(bad(
            &pair.labels,
            format!("holds an array of {:?}; labels are one number per sample", labels.dims),
        ));
    };
    if *n_labels != images.dims[0] {
        return Err(bad(
            &pair.labels,
            format!("holds {n_labels} labels for the {} images of {}", images.dims[0], pair.images.display()),
        ));
    }
    Ok(Samples {
        labels: Labels::Numbers(whole_labels(labels.data.iter().map(|&v| f64::from(v)), &pair.labels)?),
        features: images.data,
        sample_shape,
        eight_bit: images.eight_bit,
    })
}

/// Label values that must be whole numbers ≥ 0 (a file's numbers), as classes.
fn whole_labels(values: impl Iterator<Item = f64>, origin: &Path) -> Result<Vec<u32>> {
    values
        .enumerate()
        .map(|(i, v)| {
            if v >= 0.0 && v.fract() == 0.0 && v < MAX_CLASSES as f64 {
                Ok(v as u32)
            } else if v.fract() == 0.0 && v >= MAX_CLASSES as f64 {
                Err(bad(origin, format!("label {v} of sample {i} would make more than {MAX_CLASSES} classes")))
            } else {
                Err(bad(origin, format!("label {v} of sample {i} is not a whole number of 0 or more")))
            }
        })
        .collect()
}

/// Checks both splits, numbers their classes (the same numbering for both) and divides values.
fn finish(
    train: (Samples, PathBuf),
    test: Option<(Samples, PathBuf)>,
    fixed_classes: Option<usize>,
    normalisation: Normalisation,
) -> Result<Loaded> {
    let (train, train_origin) = train;
    for (samples, origin) in std::iter::once((&train, &train_origin)).chain(test.as_ref().map(|(s, o)| (s, o))) {
        if samples.is_empty() {
            return Err(bad(origin, "holds no samples"));
        }
        let dim: usize = samples.sample_shape.iter().product();
        debug_assert_eq!(samples.features.len(), samples.len() * dim);
        if let Some(at) = samples.features.iter().position(|v| !v.is_finite()) {
            let value = samples.features[at];
            return Err(bad(origin, format!("sample {} holds {value}, not a finite number", at / dim.max(1))));
        }
    }
    if let Some((samples, origin)) = &test
        && samples.sample_shape != train.sample_shape
    {
        return Err(bad(
            origin,
            format!(
                "its samples are {} but those of {} are {}; both splits need one shape",
                shape_text(&samples.sample_shape),
                train_origin.display(),
                shape_text(&train.sample_shape)
            ),
        ));
    }
    let (train_labels, test_labels, num_classes, names) =
        number_classes(&train.labels, test.as_ref().map(|(s, _)| &s.labels), fixed_classes, &train_origin)?;
    if let Some(classes) = fixed_classes {
        for (labels, origin) in std::iter::once((&train_labels, &train_origin))
            .chain(test_labels.as_ref().zip(test.as_ref().map(|(_, o)| o)))
        {
            if let Some((i, l)) = labels.iter().enumerate().find(|&(_, &l)| l as usize >= classes) {
                return Err(bad(origin, format!("label {l} of sample {i} is beyond the {classes} classes")));
            }
        }
    }
    let distinct: BTreeSet<u32> = train_labels.iter().copied().collect();
    if distinct.len() < 2 {
        let class =
            distinct.first().map_or_else(String::new, |&c| names.get(c as usize).cloned().unwrap_or(c.to_string()));
        return Err(bad(
            &train_origin,
            format!("every sample is of class {class}: a classifier needs two classes or more"),
        ));
    }
    let divide_by = normalisation.divide_by.unwrap_or(if train.eight_bit { 255.0 } else { 1.0 }) as f32;
    let dataset = |samples: Samples, labels: Vec<u32>| {
        let mut features = samples.features;
        if divide_by != 1.0 {
            features.iter_mut().for_each(|v| *v /= divide_by);
        }
        Dataset { features, labels, sample_shape: samples.sample_shape, num_classes }
    };
    let images = train.sample_shape.len() == 3;
    let test = test.zip(test_labels).map(|((samples, _), labels)| dataset(samples, labels));
    Ok(Loaded { train: dataset(train, train_labels), test, images, standardise: normalisation.standardise })
}

/// Class numbers for both splits, the number of classes and, where labels were names, the
/// names in class order.
type Numbered = (Vec<u32>, Option<Vec<u32>>, usize, Vec<String>);

fn number_classes(train: &Labels, test: Option<&Labels>, fixed: Option<usize>, origin: &Path) -> Result<Numbered> {
    let splits: Vec<&Labels> = std::iter::once(train).chain(test).collect();
    let cells_are_numbers = splits.iter().all(|labels| match labels {
        Labels::Cells(cells) => cells.iter().all(|c| c.parse::<u32>().is_ok()),
        _ => true,
    });
    let as_numbers = |labels: &Labels| -> Option<Vec<u32>> {
        match labels {
            Labels::Numbers(v) => Some(v.clone()),
            Labels::Cells(cells) if cells_are_numbers => cells.iter().map(|c| c.parse().ok()).collect(),
            _ => None,
        }
    };
    if let Some(numbers) = splits.iter().map(|l| as_numbers(l)).collect::<Option<Vec<Vec<u32>>>>() {
        let max = numbers.iter().flatten().copied().max().unwrap_or(0) as usize;
        if max >= MAX_CLASSES {
            return Err(bad(origin, format!("label {max} would make more than {MAX_CLASSES} classes")));
        }
        let mut numbers = numbers.into_iter();
        let train = numbers.next().unwrap_or_default();
        return Ok((train, numbers.next(), fixed.unwrap_or(max + 1), Vec::new()));
    }
    let names_of = |labels: &Labels| -> Vec<String> {
        match labels {
            Labels::Numbers(v) => v.iter().map(u32::to_string).collect(),
            Labels::Cells(v) | Labels::Folders(v) => v.clone(),
        }
    };
    let all: Vec<Vec<String>> = splits.iter().map(|l| names_of(l)).collect();
    let mut names: Vec<String> = all.iter().flatten().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    if matches!(train, Labels::Folders(_)) {
        folder_order(&mut names);
    }
    if names.len() > MAX_CLASSES {
        return Err(bad(
            origin,
            format!(
                "holds {} distinct labels, more than {MAX_CLASSES} classes: is the label column the right one?",
                names.len()
            ),
        ));
    }
    let index: std::collections::HashMap<&str, u32> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    let mut numbered = all.iter().map(|labels| labels.iter().map(|l| index[l.as_str()]).collect::<Vec<u32>>());
    let train = numbered.next().unwrap_or_default();
    let test = numbered.next();
    let classes = names.len();
    Ok((train, test, classes, names))
}
