//! Trained pairs kept while a run goes on, so that a run stopped after training a pair takes it
//! up again instead of training it anew: a reproduction cell of the deeper network trains two
//! pairs in over an hour, and the process computing it can be stopped under it. A pair reads back
//! as the very weights it was trained to (`HostParams` serialises them bit for bit), with the
//! target its training ended on and its curves (their numbers kept as bits, so that a diverged
//! pair's NaN and infinities read back too), so a run resumed from its checkpoints gives the
//! numbers of a run never stopped.
//!
//! A pair is only taken up by the run it was kept for: each file names its seed, its training,
//! the device and the build that trained it, and a file that names another (a build with changed
//! training, a CPU pair read by a GPU run) is discarded and its pair trained again, so that the
//! two pairs of one result never come from two builds or two devices.

use super::{Endpoint, EpochRecord};
use crate::error::{Result, WsaError};
use crate::experiment::method::Training;
use crate::io;
use crate::model::{HostParams, ModelLayout};
use crate::scope::Scope;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The layout of a kept pair's file; raised when it changes, so an older file is discarded.
const FORMAT: u32 = 1;

/// The build that trains a pair: a pair trained by another is not taken up. The version alone
/// does not change when the CPU kernels' numbers do, so their revision is part of it: raised
/// with every such change (2, 2026-12-07: the convolution's matrix products called directly,
/// stride 2 on our kernels, the input gradient as a convolution, gemm's AVX-512 kernels; 3,
/// 2026-12-07: the convolution's forward pass and weight gradient on our own SIMD kernels,
/// conv/direct.rs).
const BUILD: &str = concat!(env!("CARGO_PKG_VERSION"), "+cpu-kernels.3");

/// Which pair a run wants back: a kept pair is taken up only where every part matches.
#[derive(Clone, Copy, Debug)]
pub struct PairKey<'a> {
    pub seed: u64,
    pub training: Training,
    /// The model both endpoints have.
    pub layout: &'a ModelLayout,
    /// How many layers have a scope (the target's length, each curve's scopes).
    pub scoped_layers: usize,
    /// The device the run trains on ([`crate::device::ComputeDevice::description`]).
    pub device: &'a str,
}

/// A trained pair as kept: both models, the target their training ended on, and the training
/// curves as they were recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct SavedPair {
    pub a: HostParams,
    pub b: HostParams,
    pub target: Vec<Scope>,
    pub curves: Vec<EpochRecord>,
}

impl SavedPair {
    /// Why this pair is not the one `key` asks for (`None`: it is). Only the shapes are checked
    /// here; the file's seed, training, device and build are checked by [`CheckpointFolder`].
    fn mismatch(&self, key: &PairKey) -> Option<String> {
        if *self.a.layout != *key.layout || *self.b.layout != *key.layout {
            return Some("its models have another architecture".into());
        }
        if self.target.len() != key.scoped_layers {
            return Some(format!("its target has {} scopes for {} layers", self.target.len(), key.scoped_layers));
        }
        if let Some(curve) = self.curves.iter().find(|c| c.scopes.len() != key.scoped_layers) {
            return Some(format!("its curve of epoch {} has {} scopes", curve.epoch, curve.scopes.len()));
        }
        None
    }
}

/// What became of a pair a run looked for.
#[derive(Debug)]
pub enum Kept {
    /// Read back: the run takes it up.
    Pair(SavedPair),
    /// None was kept.
    Missing,
    /// One was kept but cannot be taken up (the reason, a phrase): it is trained again.
    Discarded(String),
}

/// Where a run keeps the pairs it trained, by seed and training.
pub trait PairCheckpoints {
    /// Whether pairs are kept at all (else the run does not copy them off the device).
    fn keeps(&self) -> bool {
        true
    }
    /// The pair `key` asks for, kept earlier.
    fn load(&self, key: &PairKey) -> Kept;
    /// Keeps `pair` as the one `key` names. An error loses nothing but the checkpoint: the run
    /// goes on without it.
    fn save(&self, key: &PairKey, pair: &SavedPair) -> Result<()>;
}

/// No checkpoints: every pair is trained.
pub struct NoCheckpoints;

impl PairCheckpoints for NoCheckpoints {
    fn keeps(&self) -> bool {
        false
    }
    fn load(&self, _: &PairKey) -> Kept {
        Kept::Missing
    }
    fn save(&self, _: &PairKey, _: &SavedPair) -> Result<()> {
        Ok(())
    }
}

/// Checkpoints in a folder of their own, one JSON file per seed and pair, each written
/// atomically. A file that cannot be taken up (cut short, edited, another model's, seed's,
/// device's or build's) is removed and its pair trained again. The folder logs what it did, for
/// its caller to pass on: the pairs it gave back (a resumed run's wall time misses the part
/// before its stop), those it discarded and those it could not keep.
pub struct CheckpointFolder {
    dir: PathBuf,
    log: Mutex<FolderLog>,
}

#[derive(Default)]
struct FolderLog {
    read_back: usize,
    notes: Vec<String>,
}

impl CheckpointFolder {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), log: Mutex::default() }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, FolderLog> {
        // A panic elsewhere while the log was held leaves it whole: it only ever grows.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the pair `training` of seed `seed` is kept.
    pub fn path(&self, seed: u64, training: Training) -> PathBuf {
        self.dir.join(format!("seed-{seed}-{}.json", training.name()))
    }

    /// How many pairs this folder has given back to runs (since it was made).
    pub fn pairs_read_back(&self) -> usize {
        self.log().read_back
    }

    /// What the folder did since it was made or last asked, one sentence each: pairs taken up,
    /// discarded (and why), not kept (and why).
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.log().notes)
    }

    /// Removes the folder and what it keeps, the run it served having finished; and the folder
    /// above it, where that is left empty (no other run keeps pairs there).
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(
                    WsaError::io(&self.dir, e).within("removing a finished run's kept pairs (safe to delete by hand)")
                );
            }
            _ => {}
        }
        if let Some(parent) = self.dir.parent() {
            // Fails, and is meant to, while the folder holds another run's pairs. Another process
            // making its own folder there at this moment loses nothing: keeping a pair is
            // best-effort (`PairCheckpoints::save`).
            std::fs::remove_dir(parent).ok();
        }
        Ok(())
    }
}

impl PairCheckpoints for CheckpointFolder {
    fn load(&self, key: &PairKey) -> Kept {
        let path = self.path(key.seed, key.training);
        let which = format!("the {} pair of seed {}", key.training.label(), key.seed);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Kept::Missing,
            Err(e) => {
                let reason = format!("{} cannot be read ({e})", path.display());
                self.log().notes.push(format!("{which} was kept but is trained again: {reason}"));
                return Kept::Discarded(reason);
            }
        };
        let reason = match serde_json::from_slice::<PairFile>(&bytes) {
            Err(e) => format!("it does not read back as a kept pair ({e})"),
            Ok(file) => match file.mismatch(key) {
                Some(reason) => reason,
                None => match file.into_pair() {
                    Err(reason) => reason,
                    Ok(pair) => match pair.mismatch(key) {
                        Some(reason) => reason,
                        None => {
                            let mut log = self.log();
                            log.read_back += 1;
                            log.notes.push(format!("{which} was taken up as a stopped run kept it"));
                            return Kept::Pair(pair);
                        }
                    },
                },
            },
        };
        std::fs::remove_file(&path).ok();
        self.log().notes.push(format!("{which} was kept but is trained again: {reason}"));
        Kept::Discarded(reason)
    }

    fn save(&self, key: &PairKey, pair: &SavedPair) -> Result<()> {
        let saved = std::fs::create_dir_all(&self.dir).map_err(|e| WsaError::io(&self.dir, e)).and_then(|()| {
            let json = serde_json::to_vec(&PairFile::of(key, pair))
                .map_err(|e| WsaError::serialize("a trained pair's checkpoint", e))?;
            io::write_atomic(&self.path(key.seed, key.training), &json)
        });
        if let Err(e) = &saved {
            self.log().notes.push(format!(
                "the {} pair of seed {} could not be kept ({e}); the run goes on, and a stop before it ends trains the pair again (free space or permissions in {})",
                key.training.label(),
                key.seed,
                self.dir.display()
            ));
        }
        saved
    }
}

/// A kept pair's file: what it is for, then the pair, its numbers as the bits of their f64s.
#[derive(Serialize, Deserialize)]
struct PairFile {
    format: u32,
    build: String,
    device: String,
    seed: u64,
    training: Training,
    a: HostParams,
    b: HostParams,
    /// Mean and std of each layer in turn.
    target: Vec<u64>,
    curves: Vec<CurveBits>,
}

/// One epoch's record: the training loss, the test accuracy, then mean and std of each layer.
#[derive(Serialize, Deserialize)]
struct CurveBits {
    model: Endpoint,
    epoch: usize,
    numbers: Vec<u64>,
}

/// Numbers as the bits of their f64s: NaN, the infinities and −0 read back as they were (JSON
/// has no NaN, and serde writes it as null).
fn bits(numbers: impl IntoIterator<Item = f64>) -> Vec<u64> {
    numbers.into_iter().map(f64::to_bits).collect()
}

fn scope_numbers(scopes: &[Scope]) -> impl Iterator<Item = f64> + '_ {
    scopes.iter().flat_map(|s| [s.mean, s.std])
}

/// Scopes from their bits, mean and std in turn (an odd one left over is dropped, and the
/// count check of [`SavedPair::mismatch`] then refuses the pair).
fn scopes_of_bits(bits: &[u64]) -> Vec<Scope> {
    bits.chunks_exact(2).map(|p| Scope { mean: f64::from_bits(p[0]), std: f64::from_bits(p[1]) }).collect()
}

impl PairFile {
    fn of(key: &PairKey, pair: &SavedPair) -> Self {
        let curve = |c: &EpochRecord| CurveBits {
            model: c.model,
            epoch: c.epoch,
            numbers: bits([c.train_loss, c.test_accuracy].into_iter().chain(scope_numbers(&c.scopes))),
        };
        Self {
            format: FORMAT,
            build: BUILD.into(),
            device: key.device.into(),
            seed: key.seed,
            training: key.training,
            a: pair.a.clone(),
            b: pair.b.clone(),
            target: bits(scope_numbers(&pair.target)),
            curves: pair.curves.iter().map(curve).collect(),
        }
    }

    /// Why this file is not for the run `key` names (`None`: it is).
    fn mismatch(&self, key: &PairKey) -> Option<String> {
        if self.format != FORMAT {
            Some(format!("it is in format {} (this build reads {FORMAT})", self.format))
        } else if self.build != BUILD {
            Some(format!("build {} trained it (this is {BUILD})", self.build))
        } else if self.device != key.device {
            Some(format!("it was trained on {}, this run trains on {}", self.device, key.device))
        } else if self.seed != key.seed || self.training != key.training {
            Some(format!("it holds the {} pair of seed {}", self.training.name(), self.seed))
        } else {
            None
        }
    }

    /// The pair, or why the numbers do not make one.
    fn into_pair(self) -> std::result::Result<SavedPair, String> {
        let mut curves = Vec::with_capacity(self.curves.len());
        for c in self.curves {
            let [loss, accuracy, scopes @ ..] = c.numbers.as_slice() else {
                return Err(format!("its curve of epoch {} is cut short", c.epoch));
            };
            curves.push(EpochRecord {
                model: c.model,
                epoch: c.epoch,
                train_loss: f64::from_bits(*loss),
                test_accuracy: f64::from_bits(*accuracy),
                scopes: scopes_of_bits(scopes),
            });
        }
        Ok(SavedPair { a: self.a, b: self.b, target: scopes_of_bits(&self.target), curves })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use crate::rng::Rng;
    use std::sync::Arc;

    fn mlp(hidden: usize) -> ModelLayout {
        ModelLayout::new(&ModelConfig::mlp(vec![hidden]), &[4], 2).expect("layout")
    }

    fn layout() -> ModelLayout {
        mlp(3)
    }

    fn pair(layout: &ModelLayout) -> SavedPair {
        let params = Arc::new(layout.clone()).init(&mut Rng::new(5));
        let scope = |mean: f64, std: f64| Scope { mean, std };
        SavedPair {
            a: params.clone(),
            b: params,
            target: vec![scope(0.5, f64::NAN), scope(-0.0, 1e-300)],
            curves: vec![EpochRecord {
                model: Endpoint::B,
                epoch: 3,
                train_loss: f64::INFINITY,
                test_accuracy: f64::NEG_INFINITY,
                scopes: vec![scope(f64::NAN, 0.1), scope(0.2, 0.3)],
            }],
        }
    }

    fn folder(name: &str) -> CheckpointFolder {
        let dir = std::env::temp_dir().join(format!("wsa-lab-kept-pairs-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        CheckpointFolder::new(dir.join("cell"))
    }

    /// Every number of the pair's target and curves, as bits.
    fn all_bits(pair: &SavedPair) -> Vec<u64> {
        let curves = pair
            .curves
            .iter()
            .flat_map(|c| [c.train_loss, c.test_accuracy].into_iter().chain(scope_numbers(&c.scopes)));
        bits(scope_numbers(&pair.target).chain(curves))
    }

    #[test]
    fn a_kept_pair_reads_back_bit_for_bit_with_nan_infinities_and_negative_zero() {
        let layout = layout();
        let key = PairKey { seed: 7, training: Training::Wsa, layout: &layout, scoped_layers: 2, device: "CPU" };
        let kept = pair(&layout);
        let folder = folder("round-trip");
        folder.save(&key, &kept).expect("save");
        let Kept::Pair(back) = folder.load(&key) else { panic!("the pair reads back") };
        assert_eq!(all_bits(&back), all_bits(&kept));
        assert_eq!((back.a, back.b), (kept.a, kept.b));
        assert_eq!(folder.pairs_read_back(), 1);
        folder.remove().expect("remove");
        assert!(!folder.dir().parent().expect("parent").exists(), "the emptied folder above goes too");
    }

    #[test]
    fn a_pair_kept_for_another_seed_device_build_or_shape_is_discarded_with_its_reason() {
        let layout = layout();
        let key = PairKey { seed: 1, training: Training::Plain, layout: &layout, scoped_layers: 2, device: "CPU" };
        let folder = folder("foreign");
        let discarded = |file: &PairFile, key: &PairKey| {
            std::fs::create_dir_all(folder.dir()).expect("dir");
            std::fs::write(folder.path(key.seed, key.training), serde_json::to_vec(file).expect("json"))
                .expect("write");
            let Kept::Discarded(reason) = folder.load(key) else { panic!("discarded") };
            assert!(!folder.path(key.seed, key.training).exists(), "the file is removed");
            reason
        };
        let good = PairFile::of(&key, &pair(&layout));
        assert!(discarded(&PairFile { seed: 2, ..PairFile::of(&key, &pair(&layout)) }, &key).contains("seed 2"));
        let gpu = PairFile { device: "GPU".into(), ..PairFile::of(&key, &pair(&layout)) };
        assert!(discarded(&gpu, &key).contains("trained on GPU"));
        let old = PairFile { build: "0.0.1".into(), ..PairFile::of(&key, &pair(&layout)) };
        assert!(discarded(&old, &key).contains("build 0.0.1"));
        let short = PairFile { target: good.target[..3].to_vec(), ..PairFile::of(&key, &pair(&layout)) };
        assert!(discarded(&short, &key).contains("1 scopes for 2 layers"));
        let mut cut = PairFile::of(&key, &pair(&layout));
        cut.curves[0].numbers.truncate(1);
        assert!(discarded(&cut, &key).contains("curve of epoch 3 is cut short"));
        cut.curves[0].numbers = good.curves[0].numbers[..4].to_vec();
        assert!(discarded(&cut, &key).contains("curve of epoch 3 has 1 scopes"));
        let other = mlp(5);
        let wider = PairKey { layout: &other, ..key };
        assert!(discarded(&good, &wider).contains("another architecture"));
        std::fs::write(folder.path(key.seed, key.training), b"{\"format\":1,").expect("write");
        assert!(matches!(folder.load(&key), Kept::Discarded(r) if r.contains("does not read back")));
        assert!(matches!(folder.load(&key), Kept::Missing), "and then there is none");
        assert_eq!(folder.pairs_read_back(), 0);
        folder.remove().expect("remove");
    }
}
