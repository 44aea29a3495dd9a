//! What every experiment command shares: the options that make its config ([`CommonArgs`]: the
//! file or the defaults, then the data, seed and WSA strength, then the command's own) and the
//! check of its --out folder.

use crate::args;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use wsa_core::data::files::LabelColumn;
use wsa_core::data::{DataConfig, DatasetSpec, FileDataset};
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::ConnectConfig;
use wsa_core::experiment::federated::FedConfig;
use wsa_core::wsa::WsaConfig;

/// What every experiment command takes: where the config comes from, what to override in it,
/// where it runs. Applied in one place, [`CommonArgs::config`].
#[derive(clap::Args)]
pub struct CommonArgs {
    /// Experiment config (JSON, as written by --print-config or into --out).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// digits, fashion-mnist-small, mnist-small (embedded), fashion-mnist, mnist (fetched),
    /// moons, circles, spirals or blobs.
    #[arg(long, conflicts_with = "data")]
    pub dataset: Option<String>,
    /// Your own data: a .csv table, a .npz archive, a CIFAR .bin batch or a folder with one
    /// subfolder of PNG/JPEG images per class (.npy and IDX pairs: in a config file; see
    /// docs/datasets.md).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// The test split of --data, in its format (without it, --data is split by the seed).
    #[arg(long, value_name = "PATH", requires = "data")]
    pub data_test: Option<PathBuf>,
    /// The label column of a --data CSV: its name or index from 0 (default: the last column).
    #[arg(long, value_name = "COLUMN", requires = "data")]
    pub label_column: Option<String>,
    /// Where fetched datasets live.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use at most this many training samples (a seeded subset).
    #[arg(long, value_parser = args::whole::<usize>)]
    pub max_train: Option<usize>,
    /// Seed of everything random: initialisation, data order, splits.
    #[arg(long, value_parser = args::whole::<u64>)]
    pub seed: Option<u64>,
    /// WSA strength (overrides the config).
    #[arg(long, value_parser = args::number)]
    pub lambda: Option<f64>,
    /// auto: a hardware GPU for runs large enough to gain from one (`wsa-lab devices` says from
    /// how much work per step), else the CPU.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print the effective config as JSON and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// An experiment config the common options apply to.
pub trait ExperimentConfig: Versioned + Default + serde::Serialize {
    fn data_seed_wsa(&mut self) -> (&mut DataConfig, &mut u64, &mut WsaConfig);
    fn check(&self) -> wsa_core::Result<()>;
}

impl ExperimentConfig for ConnectConfig {
    fn data_seed_wsa(&mut self) -> (&mut DataConfig, &mut u64, &mut WsaConfig) {
        (&mut self.data, &mut self.seed, &mut self.wsa)
    }
    fn check(&self) -> wsa_core::Result<()> {
        self.validate()
    }
}

impl ExperimentConfig for FedConfig {
    fn data_seed_wsa(&mut self) -> (&mut DataConfig, &mut u64, &mut WsaConfig) {
        (&mut self.data, &mut self.seed, &mut self.wsa)
    }
    fn check(&self) -> wsa_core::Result<()> {
        self.validate()
    }
}

impl CommonArgs {
    /// The config a command runs: the file (or the defaults), the common options, then the
    /// command's own (`specific`), checked as a whole.
    pub fn config<C: ExperimentConfig>(&self, specific: impl FnOnce(&mut C) -> Result<()>) -> Result<C> {
        let mut config = match &self.config {
            Some(path) => C::read_file(path)?,
            None => C::default(),
        };
        let (data, seed, wsa) = config.data_seed_wsa();
        if let Some(name) = &self.dataset {
            data.dataset = DatasetSpec::from_name(name)?;
            if data.dataset.is_fetched() {
                data.max_test = data.max_test.or(Some(10_000));
            }
        }
        if let Some(path) = &self.data {
            let label = self.label_column.as_deref().map(|text| match text.parse::<usize>() {
                Ok(index) => LabelColumn::Index(index),
                Err(_) => LabelColumn::Name(text.to_string()),
            });
            data.dataset = DatasetSpec::File(FileDataset::from_path(path, self.data_test.as_deref(), label)?);
        }
        if let Some(dir) = &self.data_dir {
            data.data_dir = dir.clone();
        }
        if let Some(n) = self.max_train {
            data.max_train = Some(n);
        }
        if let Some(value) = self.seed {
            *seed = value;
        }
        if let Some(lambda) = self.lambda {
            wsa.lambda = lambda;
        }
        specific(&mut config)?;
        config.check()?;
        Ok(config)
    }

    /// Prints `config` when --print-config asked for it; then the command stops.
    pub fn printed<C: serde::Serialize>(&self, config: &C) -> Result<bool> {
        if self.print_config {
            println!("{}", serde_json::to_string_pretty(config)?);
        }
        Ok(self.print_config)
    }
}

/// Refuses an --out that names a file before anything is computed (the results are a folder of
/// files; a run that trained for minutes must not fail at its first write).
pub fn check_out_folder(out: &Path) -> Result<()> {
    check_folder_option("--out", out)
}

/// Refuses a folder option (`flag`) that names a file, in the same words as [`check_out_folder`].
pub fn check_folder_option(flag: &str, out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("{flag} {} is a file: name a folder for the results (it is created when missing)", out.display());
    }
    Ok(())
}
