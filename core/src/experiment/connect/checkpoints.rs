//! Trained pairs kept while a run goes on, so that a run stopped after training a pair takes it
//! up again instead of training it anew: a reproduction cell of the deeper network trains two
//! pairs in over an hour, and the process computing it can be stopped under it. A pair reads back
//! as the very weights it was trained to (`HostParams` serialises them bit for bit), with the
//! target its training ended on and its curves, so a run resumed from its checkpoints gives the
//! numbers of a run never stopped.

use super::EpochRecord;
use crate::error::{Result, WsaError};
use crate::experiment::method::Training;
use crate::io;
use crate::model::{HostParams, ModelLayout};
use crate::scope::Scope;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A trained pair as kept: both models, the target their training ended on, and the training
/// curves as they were recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedPair {
    pub a: HostParams,
    pub b: HostParams,
    pub target: Vec<Scope>,
    pub curves: Vec<EpochRecord>,
}

/// Where a run keeps the pairs it trained, by seed and training.
pub trait PairCheckpoints {
    /// Whether pairs are kept at all (else the run does not copy them off the device).
    fn keeps(&self) -> bool {
        true
    }
    /// The pair `training` of seed `seed`, kept earlier for a model of `layout`; `None` when none
    /// was kept or what was kept does not read back as such a pair.
    fn load(&self, seed: u64, training: Training, layout: &ModelLayout) -> Option<SavedPair>;
    fn save(&self, seed: u64, training: Training, pair: &SavedPair) -> Result<()>;
}

/// No checkpoints: every pair is trained.
pub struct NoCheckpoints;

impl PairCheckpoints for NoCheckpoints {
    fn keeps(&self) -> bool {
        false
    }
    fn load(&self, _: u64, _: Training, _: &ModelLayout) -> Option<SavedPair> {
        None
    }
    fn save(&self, _: u64, _: Training, _: &SavedPair) -> Result<()> {
        Ok(())
    }
}

/// Checkpoints in a folder of their own, one JSON file per seed and pair, each written
/// atomically. A file that does not read back as a pair of the run's model (cut short, edited,
/// another model's) is removed and its pair trained again.
pub struct CheckpointFolder {
    dir: PathBuf,
}

impl CheckpointFolder {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, seed: u64, training: Training) -> PathBuf {
        self.dir.join(format!("seed-{seed}-{}.json", training.name()))
    }

    /// Removes the folder and what it keeps, the run it served having finished; and the folder
    /// above it, where that is left empty (no other run keeps pairs there).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(WsaError::io(&self.dir, e)),
            _ => {}
        }
        if let Some(parent) = self.dir.parent() {
            // Fails, and is meant to, while the folder holds another run's pairs.
            std::fs::remove_dir(parent).ok();
        }
        Ok(())
    }
}

impl PairCheckpoints for CheckpointFolder {
    fn load(&self, seed: u64, training: Training, layout: &ModelLayout) -> Option<SavedPair> {
        let path = self.path(seed, training);
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<SavedPair>(&bytes) {
            Ok(pair) if *pair.a.layout == *layout && *pair.b.layout == *layout => Some(pair),
            _ => {
                std::fs::remove_file(&path).ok();
                None
            }
        }
    }

    fn save(&self, seed: u64, training: Training, pair: &SavedPair) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| WsaError::io(&self.dir, e))?;
        let json = serde_json::to_vec(pair).map_err(|e| WsaError::serialize("a trained pair's checkpoint", e))?;
        io::write_atomic(&self.path(seed, training), &json)
    }
}
