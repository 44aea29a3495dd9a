//! Where finished cells are kept, one file per cell, and how the store heals a damaged one.

use super::{Cell, CellRecord, REPRODUCE_VERSION};
use crate::error::{Result, WsaError};
use crate::experiment::Versioned;
use crate::experiment::connect::CheckpointFolder;
use crate::io;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where finished cells live, `<dir>/cells/<hash>.json`, and the trained pairs of the cell being
/// computed, `<dir>/pairs-in-progress/<hash>/` ([`Store::pair_checkpoints`]). A store heals: a cell file that cannot
/// be read as the record of its cell (cut short by a full disk, edited by hand, or written for
/// another config) is moved to `cells/quarantine/` with the reason beside it, and its cell is
/// computed again; only a file from a newer build of WSA Lab stops a run, since this build cannot
/// know what it holds.
pub struct Store {
    dir: PathBuf,
    /// Where cells that are computing keep their trained pairs: `<out>/pairs-in-progress/<hash>/`.
    pairs: PathBuf,
}

/// What the store holds for a cell.
#[derive(Debug)]
pub enum Stored {
    /// The cell has not finished before.
    Missing,
    Finished(Box<CellRecord>),
    /// The cell's file was damaged and is now in the quarantine: the cell is to be computed.
    SetAside(Quarantined),
}

impl Stored {
    pub fn finished(self) -> Option<CellRecord> {
        match self {
            Stored::Finished(record) => Some(*record),
            Stored::Missing | Stored::SetAside(_) => None,
        }
    }
}

/// A cell file moved to `cells/quarantine/`, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Quarantined {
    /// Where the file is now.
    pub file: PathBuf,
    pub reason: String,
}

/// The folder beside `cells/` where computing cells keep their trained pairs.
pub const PAIRS_IN_PROGRESS: &str = "pairs-in-progress";

/// The folder under `cells/` for set-aside files, and the suffix of the note beside each.
const QUARANTINE: &str = "quarantine";
const REASON_SUFFIX: &str = ".reason.txt";

/// A temporary file of an atomic write older than this was left by a process that was killed
/// mid-write (a cell file is written in milliseconds), and is removed.
const ORPHANED_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(60);

impl Store {
    /// The store of `out`, with the temporary files of killed writers swept away.
    pub fn new(out: &Path) -> Self {
        let store = Self { dir: out.join("cells"), pairs: out.join(PAIRS_IN_PROGRESS) };
        store.sweep_orphaned_temporaries();
        store
    }

    /// Where the cells of `out` are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `cell` keeps its trained pairs while it computes (a folder of its own, by its
    /// hash, so that a changed config never takes up another's pairs).
    pub fn pair_checkpoints(&self, cell: &Cell) -> CheckpointFolder {
        CheckpointFolder::new(self.pairs.join(cell.hash()))
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}.json"))
    }

    /// What the store holds for `cell`, setting a damaged file aside (see [`Store`]). Errors: a
    /// file that cannot be read at all (permissions), one from a newer build, or a quarantine
    /// that cannot be written.
    pub fn load(&self, cell: &Cell) -> Result<Stored> {
        let hash = cell.hash();
        let path = self.path(&hash);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Stored::Missing),
            Err(e) => return Err(WsaError::io(&path, e)),
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Some(version) = newer_version(&text) {
            return Err(WsaError::InFile {
                path,
                source: Box::new(WsaError::invalid(
                    "reproduce cell field `version`",
                    version,
                    &format!(
                        "this store was written by a newer build of WSA Lab (this one reads version {REPRODUCE_VERSION}); \
                         run that build, or give this one another --out"
                    ),
                )),
            });
        }
        let mut record = match CellRecord::from_json(&text) {
            Ok(record) => record,
            Err(e) => return self.quarantine(&path, &e.to_string()).map(Stored::SetAside),
        };
        if record.hash != hash || record.cell.hash() != hash {
            return self
                .quarantine(&path, "its config is not that of the cell its name says (renamed or edited by hand)")
                .map(Stored::SetAside);
        }
        // The labels (group, row) are presentation, not part of the key: the spec's current
        // ones name the cell.
        record.cell = cell.clone();
        Ok(Stored::Finished(Box::new(record)))
    }

    pub fn save(&self, record: &CellRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).map_err(|e| WsaError::serialize("a reproduce cell", e))?;
        io::write_atomic(&self.path(&record.hash), &json)
    }

    /// Moves `path` into the quarantine (under a free name: an earlier damaged copy stays) and
    /// writes `reason` beside it.
    fn quarantine(&self, path: &Path, reason: &str) -> Result<Quarantined> {
        let folder = self.dir.join(QUARANTINE);
        std::fs::create_dir_all(&folder).map_err(|e| WsaError::io(&folder, e))?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let file = (0..)
            .map(|n| folder.join(if n == 0 { format!("{stem}.json") } else { format!("{stem}-{n}.json") }))
            .find(|candidate| !candidate.exists())
            .unwrap_or_else(|| folder.join(format!("{stem}.json")));
        std::fs::rename(path, &file).map_err(|e| WsaError::io(path, e))?;
        io::write_atomic(&reason_path(&file), reason.as_bytes())?;
        Ok(Quarantined { file, reason: reason.to_string() })
    }

    /// Every file in the quarantine, with its reason, by name.
    pub fn quarantined(&self) -> Vec<Quarantined> {
        let Ok(entries) = std::fs::read_dir(self.dir.join(QUARANTINE)) else { return Vec::new() };
        let mut set_aside: Vec<Quarantined> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .map(|file| {
                let reason = std::fs::read_to_string(reason_path(&file)).unwrap_or_else(|_| "no reason kept".into());
                Quarantined { file, reason }
            })
            .collect();
        set_aside.sort_by(|a, b| a.file.cmp(&b.file));
        set_aside
    }

    /// Removes the temporary files that writers killed mid-write left (see [`io::write_atomic`]);
    /// a store that cannot be listed is left as it is (the run reports what fails later).
    fn sweep_orphaned_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for path in entries.filter_map(|entry| entry.ok().map(|e| e.path())) {
            let orphaned = io::is_atomic_temporary(&path)
                && std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ORPHANED_TEMPORARY));
            if orphaned {
                std::fs::remove_file(&path).ok();
            }
        }
    }
}

fn reason_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(REASON_SUFFIX);
    PathBuf::from(name)
}

/// The version of a cell file, when it is readable JSON from a build newer than this one.
fn newer_version(text: &str) -> Option<u64> {
    let value: Value = serde_json::from_str(text).ok()?;
    value.get("version")?.as_u64().filter(|&v| v > u64::from(REPRODUCE_VERSION))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::method::Method;
    use crate::experiment::reproduce::{QUICK_SPEC, Spec, Variant, VariantOutcome};
    use std::collections::BTreeMap;

    fn a_store_with_one_finished_cell(name: &str) -> (PathBuf, Store, Cell, PathBuf) {
        let out = std::env::temp_dir().join(format!("wsa-lab-store-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&out).ok();
        let store = Store::new(&out);
        let cell = Spec::from_json(QUICK_SPEC).expect("spec").cells(&[]).expect("cells").remove(0);
        let record = CellRecord {
            version: REPRODUCE_VERSION,
            hash: cell.hash(),
            cell: cell.clone(),
            device: "CPU".into(),
            seconds: 1.0,
            variants: vec![VariantOutcome {
                variant: Variant::Method(Method::PLAIN),
                metrics: BTreeMap::from([("x".into(), 0.5)]),
                series: BTreeMap::new(),
                diverged: None,
            }],
            warnings: Vec::new(),
            pairs_resumed: 0,
        };
        store.save(&record).expect("save");
        let file = store.path(&cell.hash());
        (out, store, cell, file)
    }

    #[test]
    fn a_damaged_cell_file_is_set_aside_with_its_reason_and_its_cell_counts_as_missing() {
        let (out, store, cell, file) = a_store_with_one_finished_cell("damaged");
        assert!(matches!(store.load(&cell).expect("load"), Stored::Finished(r) if r.variants.len() == 1));

        // Cut short, as by a full disk: set aside, named, and the cell is to compute again.
        let bytes = std::fs::read(&file).expect("read");
        std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
        let Stored::SetAside(set_aside) = store.load(&cell).expect("load") else { panic!("not set aside") };
        assert!(!file.exists(), "the damaged file left the store");
        assert_eq!(set_aside.file, store.dir().join("quarantine").join(file.file_name().expect("name")));
        assert_eq!(std::fs::read(&set_aside.file).expect("kept"), &bytes[..bytes.len() / 2], "kept as it was");
        assert!(set_aside.reason.contains("not valid JSON"), "{}", set_aside.reason);
        assert!(matches!(store.load(&cell).expect("load"), Stored::Missing));

        // Another cell's record under this cell's name: set aside beside the first, not over it.
        let mut foreign: Value = serde_json::from_slice(&bytes).expect("json");
        foreign["cell"]["experiment"]["config"]["seed"] = Value::from(99);
        std::fs::write(&file, foreign.to_string()).expect("write");
        let Stored::SetAside(second) = store.load(&cell).expect("load") else { panic!("not set aside") };
        assert_ne!(second.file, set_aside.file);
        assert!(second.reason.contains("not that of the cell"), "{}", second.reason);
        let listed = store.quarantined();
        assert!(listed.len() == 2 && listed.contains(&set_aside) && listed.contains(&second), "{listed:?}");
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn a_cell_file_from_a_newer_build_stops_the_run_by_name() {
        let (out, store, cell, file) = a_store_with_one_finished_cell("newer");
        let mut newer: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
        newer["version"] = Value::from(REPRODUCE_VERSION + 1);
        std::fs::write(&file, newer.to_string()).expect("write");
        let error = store.load(&cell).expect_err("newer").to_string();
        assert!(error.contains(&file.display().to_string()) && error.contains("newer build"), "{error}");
        assert!(file.exists(), "a newer build's file is never moved");
        std::fs::remove_dir_all(&out).ok();
    }

    #[test]
    fn temporaries_of_killed_writers_are_swept_and_fresh_ones_kept() {
        let (out, store, _, _) = a_store_with_one_finished_cell("sweep");
        let old = store.dir().join(".abc.json.tmp-4242");
        let fresh = store.dir().join(".def.json.tmp-4243");
        for path in [&old, &fresh] {
            std::fs::write(path, b"{\"half").expect("write");
        }
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(&old).and_then(|f| f.set_modified(an_hour_ago)).expect("mtime");
        let _reopened = Store::new(&out);
        assert!(!old.exists(), "an orphaned temporary is removed");
        assert!(fresh.exists(), "a temporary a live writer may still rename is kept");
        std::fs::remove_dir_all(&out).ok();
    }
}
