//! The files a user brings to compare models of their own: two model files (PyTorch state_dicts
//! saved as safetensors, or models the lab saved), layout files beside them, and a data set,
//! dropped anywhere on the window or picked. Whenever the set changes, what they hold is read in
//! the background ([`Reading`]): each model's inferred layout, the pair, the data's samples and
//! classes, and, when the pair is no model the lab can run (another architecture, a checkpoint
//! of gigabytes), the scopes of the two checkpoints' tensors.

use crate::platform::{self, FileContent, FileInbox, HandedFile, Pending};
use crate::{AppError, AppResult};
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use wsa_core::WsaError;
use wsa_core::checkpoint::{self, Comparison};
use wsa_core::data::{self, DataConfig, DatasetSpec, Disk, FileDataset, FileSource, Memory, Normalisation};
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::GivenPair;
use wsa_core::infer::{self, LayoutHints};
use wsa_core::io::LoadedModel;

/// A model file larger than this is not read into memory as a model: its tensors' scopes are
/// streamed from the disk instead (natively; the page's own limit is lower).
const MODEL_READ_LIMIT: u64 = 1 << 30;

/// What the files handed over are, and what was read from them.
#[derive(Default)]
pub struct GivenFiles {
    /// The files of models A and B, in the order of their names (at most two).
    models: Vec<HandedFile>,
    /// Layout files (`<model>.layout.json`).
    layouts: Vec<HandedFile>,
    data: Option<HandedFile>,
    /// Files not taken, each with why.
    pub refused: Vec<String>,
    inbox: FileInbox,
    reading: Option<Pending<Reading>>,
    read_with: Option<DataSplitting>,
}

/// How a data set handed over is split (the share held out for testing; which samples, the
/// run's seed, changes no count shown) and normalised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DataSplitting {
    pub test_fraction: f64,
    pub normalisation: Normalisation,
}

/// What the files hold, read in the background.
pub struct Reading {
    /// Each model file's name and what was read from it.
    pub models: Vec<(String, AppResult<LoadedModel>)>,
    /// A and B as a pair the lab can evaluate, once both are read.
    pub pair: Option<AppResult<GivenPair>>,
    /// The data set's name and what it holds.
    pub data: Option<(String, AppResult<DataSummary>)>,
    /// The scopes of both checkpoints' tensors, when the pair cannot be evaluated as models.
    pub checkpoints: Option<AppResult<Comparison>>,
}

/// A data set the user handed over, as the run will read it.
pub struct DataSummary {
    /// The data of the run: this file set, all of it, split as the Experiment panel says.
    pub config: DataConfig,
    /// Where the run reads its files: the page's copy (it has no disk), else the disk.
    pub files: Option<Memory>,
    pub train: usize,
    pub test: usize,
    pub sample_shape: Vec<usize>,
    pub classes: usize,
}

impl GivenFiles {
    /// Asks for files: the browser's file dialog in the page, the typed path natively.
    pub fn pick(&self, typed_path: &str, ctx: &egui::Context) {
        platform::pick_files(&self.inbox, typed_path, ctx);
    }

    /// Takes the files dropped on the window this frame (read into the inbox, in the page a
    /// frame or more later).
    pub fn take_dropped(&self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if !dropped.is_empty() {
            platform::take_dropped(dropped, &self.inbox, ctx);
        }
    }

    /// Sorts the files that arrived into their places and starts reading them again with the
    /// data split of `base` (fraction and seed); true when any arrived.
    pub fn take_arrived(&mut self, base: &DataConfig, split: DataSplitting, ctx: &egui::Context) -> bool {
        let arrived: Vec<AppResult<HandedFile>> =
            self.inbox.lock().map(|mut inbox| std::mem::take(&mut *inbox)).unwrap_or_default();
        if arrived.is_empty() {
            return false;
        }
        for file in arrived {
            match file {
                Ok(file) => self.place(file),
                Err(e) => self.refused.push(e.to_string()),
            }
        }
        self.read_again(base, split, ctx);
        true
    }

    /// Where a file goes, by its name: a model (a third starts a new pair), a layout file, or
    /// the data set (replacing the one before).
    fn place(&mut self, file: HandedFile) {
        let name = file.name();
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".safetensors") {
            // The same file again (after fixing it) replaces itself; a third starts a new pair.
            self.models.retain(|m| m.origin != file.origin);
            if self.models.len() == 2 {
                self.models.clear();
            }
            self.models.push(file);
            self.models.sort_by_key(HandedFile::name);
        } else if lower.ends_with(".layout.json") {
            self.layouts.retain(|l| l.name() != name);
            self.layouts.push(file);
        } else if lower.ends_with(".pt") || lower.ends_with(".pth") || lower.ends_with(".ckpt") {
            self.refused.push(checkpoint::header::pickle_advice(&file.origin));
        } else {
            match FileDataset::of_given_file(&file.origin, file.is_folder()) {
                Ok(_) => self.data = Some(file),
                Err(e) => self.refused.push(e.to_string()),
            }
        }
    }

    /// Forgets every file handed over.
    pub fn clear(&mut self) {
        *self = Self { inbox: Arc::clone(&self.inbox), ..Self::default() };
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.layouts.is_empty() && self.data.is_none() && self.refused.is_empty()
    }

    /// The files of models A and B, and the layout files, as handed over.
    pub fn model_files(&self) -> &[HandedFile] {
        &self.models
    }

    pub fn layout_files(&self) -> &[HandedFile] {
        &self.layouts
    }

    /// What was read, once it is.
    pub fn reading(&self) -> Option<&Reading> {
        self.reading.as_ref().and_then(Pending::get)
    }

    /// The files a run on `data` reads, where the page holds them: those of the data set handed
    /// over when `data` is it (a job in the page's worker has no other copy).
    pub fn files_for(&self, data: &DataConfig) -> Option<Memory> {
        match &self.reading()?.data {
            Some((_, Ok(summary))) if &summary.config == data => summary.files.clone(),
            _ => None,
        }
    }

    /// Whether files are being read.
    pub fn is_reading(&self) -> bool {
        self.reading.as_ref().is_some_and(|r| r.get().is_none())
    }

    /// Reads every file again (in the background): the set changed, or how the data is split
    /// and normalised did.
    pub fn read_again(&mut self, base: &DataConfig, split: DataSplitting, ctx: &egui::Context) {
        if self.models.is_empty() && self.data.is_none() {
            self.reading = None;
            return;
        }
        let (models, layouts, data) = (self.models.clone(), self.layouts.clone(), self.data.clone());
        let base = base.clone();
        self.read_with = Some(split);
        self.reading = Some(platform::compute(ctx, move || read(&models, &layouts, data.as_ref(), &base, split)));
    }

    /// How the data was last read, to read it again when that changes.
    pub fn read_with(&self) -> Option<DataSplitting> {
        self.read_with
    }
}

/// Reads the models (each with its layout file), the pair, the data set and, where the pair is
/// no model the lab runs, the checkpoints' scopes.
fn read(
    models: &[HandedFile],
    layouts: &[HandedFile],
    data: Option<&HandedFile>,
    base: &DataConfig,
    split: DataSplitting,
) -> Reading {
    let read_models: Vec<(String, AppResult<LoadedModel>)> =
        models.iter().map(|file| (file.name(), read_model(file, layouts))).collect();
    let pair = match read_models.as_slice() {
        [(name_a, Ok(a)), (name_b, Ok(b))] => Some(
            GivenPair::new(a.params.clone(), b.params.clone(), [name_a.clone(), name_b.clone()])
                .map_err(AppError::from),
        ),
        [(_, a), (_, b)] if a.is_err() || b.is_err() => {
            Some(Err(AppError::Usage("the pair needs both models read: see the messages above".into())))
        }
        _ => None,
    };
    let checkpoints = match (&pair, models) {
        (Some(Err(_)), [a, b]) => Some(compare_checkpoints(a, b)),
        _ => None,
    };
    let data = data.map(|file| (file.name(), read_data(file, base, split)));
    Reading { models: read_models, pair, data, checkpoints }
}

/// The layout file that goes with `model`: the one of its name (`net.layout.json` for
/// `net.safetensors`), else the only one handed over, else natively the one beside it on disk.
fn hints_for(model: &HandedFile, layouts: &[HandedFile]) -> AppResult<Option<LayoutHints>> {
    let own = infer::layout_file_for(Path::new(&model.name()));
    let chosen = layouts.iter().find(|l| Path::new(&l.name()) == own).or(match layouts {
        [only] => Some(only),
        _ => None,
    });
    let Some(layout) = chosen else {
        return Ok(match model.content {
            FileContent::Disk { .. } => infer::read_hints(&model.origin)?,
            FileContent::Bytes(_) => None,
        });
    };
    let text = String::from_utf8_lossy(&bytes_of(layout)?).into_owned();
    Ok(Some(
        LayoutHints::from_json(&text)
            .map_err(|e| WsaError::InFile { path: layout.origin.clone(), source: Box::new(e) })?,
    ))
}

/// A model file as a model: one the lab saved, or a PyTorch state_dict with its layout inferred.
fn read_model(file: &HandedFile, layouts: &[HandedFile]) -> AppResult<LoadedModel> {
    if matches!(file.content, FileContent::Disk { size, .. } if size > MODEL_READ_LIMIT) {
        return Err(AppError::Usage(format!(
            "{} holds {} MiB, too large to evaluate as a model here; its tensors' scopes are compared from the disk below",
            file.name(),
            file.size() >> 20
        )));
    }
    let hints = hints_for(file, layouts)?;
    Ok(infer::read_user_model(&bytes_of(file)?, hints.as_ref(), &file.origin)?)
}

/// The file's bytes: held already, or read from the disk.
fn bytes_of(file: &HandedFile) -> AppResult<Arc<[u8]>> {
    match &file.content {
        FileContent::Bytes(bytes) => Ok(Arc::clone(bytes)),
        FileContent::Disk { .. } => Ok(std::fs::read(&file.origin).map_err(|e| WsaError::io(&file.origin, e))?.into()),
    }
}

/// The data set in `file`, all of it, split as `base` and `split` say.
fn read_data(file: &HandedFile, base: &DataConfig, split: DataSplitting) -> AppResult<DataSummary> {
    let mut dataset = FileDataset::of_given_file(&file.origin, file.is_folder())?;
    dataset.normalisation = split.normalisation;
    let config = DataConfig {
        dataset: DatasetSpec::File(dataset),
        max_train: None,
        max_test: None,
        test_fraction: split.test_fraction,
        ..base.clone()
    };
    // Read to count and check: the samples a run draws follow its own seed.
    let seed = 0;
    let files = match &file.content {
        FileContent::Bytes(bytes) => {
            let mut memory = Memory::default();
            memory.insert(file.origin.clone(), bytes.to_vec());
            Some(memory)
        }
        FileContent::Disk { .. } => None,
    };
    let source: &dyn FileSource = match &files {
        Some(memory) => memory,
        None => &Disk,
    };
    let split = data::load_from(&config, seed, source)?;
    Ok(DataSummary {
        train: split.train.len(),
        test: split.test.len(),
        sample_shape: split.train.sample_shape.clone(),
        classes: split.train.num_classes,
        config,
        files,
    })
}

/// A checkpoint read in pieces: from memory in the page, streamed from the disk natively.
enum CheckpointReader {
    Memory(Cursor<Arc<[u8]>>),
    Disk(std::fs::File),
}

impl Read for CheckpointReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            CheckpointReader::Memory(cursor) => cursor.read(buf),
            CheckpointReader::Disk(file) => file.read(buf),
        }
    }
}

impl Seek for CheckpointReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match self {
            CheckpointReader::Memory(cursor) => cursor.seek(to),
            CheckpointReader::Disk(file) => file.seek(to),
        }
    }
}

fn checkpoint_reader(file: &HandedFile) -> AppResult<CheckpointReader> {
    Ok(match &file.content {
        FileContent::Bytes(bytes) => CheckpointReader::Memory(Cursor::new(Arc::clone(bytes))),
        FileContent::Disk { .. } => {
            CheckpointReader::Disk(std::fs::File::open(&file.origin).map_err(|e| WsaError::io(&file.origin, e))?)
        }
    })
}

/// Every tensor's scope in both checkpoints (`wsa-lab scopes`' comparison).
fn compare_checkpoints(a: &HandedFile, b: &HandedFile) -> AppResult<Comparison> {
    let (mut reader_a, mut reader_b) = (checkpoint_reader(a)?, checkpoint_reader(b)?);
    let files = [a.origin.as_path(), b.origin.as_path()];
    Ok(checkpoint::compare(files, [&mut reader_a, &mut reader_b], checkpoint::compare::DEFAULT_BINS)?)
}
