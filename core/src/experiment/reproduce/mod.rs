//! `wsa-lab reproduce`: the paper's claims (method.md) measured over seeds. A spec (committed
//! as `experiments/reproduce.json`, and `experiments/reproduce-quick.json` for `--quick`) names
//! four families of experiments; each family is a list of groups, each group a base experiment
//! config and rows that change it (a JSON merge), and every row runs once per seed: one *cell*.
//! A cell's outcome is a few numbers per method (or federated variant), written as its own file
//! keyed by the hash of the cell's config, so that a run interrupted at any point resumes
//! where it stopped. [`report`] turns the cells into tables with paired confidence intervals.

pub mod report;

use super::connect::{self, ConnectConfig, ConnectResult};
use super::federated::{self, FedConfig, FedResult};
use super::method::Method;
use super::{Observer, Versioned};
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::io;
use crate::model::ModelLayout;
use crate::scope;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The version of specs and cell files this build writes.
pub const REPRODUCE_VERSION: u32 = 1;

/// The spec `wsa-lab reproduce` runs by default, and the one `--quick` runs.
pub const FULL_SPEC: &str = include_str!("../../../../experiments/reproduce.json");
pub const QUICK_SPEC: &str = include_str!("../../../../experiments/reproduce-quick.json");

/// The experiment families, in the order the report shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Mode connectivity: barriers of each method between pairs that differ in one condition.
    Connect,
    /// Federated learning: FedAvg and FedProx with and without WSA on non-IID clients.
    Fed,
    /// Ablations of WSA: target source, fusion rule, lambda, KL direction.
    Ablation,
    /// How Gaussian trained weights are, from different initialisations.
    Gaussianity,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Connect, Family::Fed, Family::Ablation, Family::Gaussianity];

    pub fn name(self) -> &'static str {
        match self {
            Family::Connect => "connect",
            Family::Fed => "fed",
            Family::Ablation => "ablation",
            Family::Gaussianity => "gaussianity",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Family::Connect => "Mode connectivity",
            Family::Fed => "Federated learning",
            Family::Ablation => "Ablations of WSA",
            Family::Gaussianity => "Gaussianity of trained weights",
        }
    }

    pub fn from_name(name: &str) -> Result<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            WsaError::invalid(
                "family",
                format!("`{name}`"),
                &format!("unknown family; choose from {}", names.join(", ")),
            )
        })
    }

    /// Whether the family's cells are federated runs (the others are connect runs).
    fn is_federated(self) -> bool {
        self == Family::Fed
    }
}

/// One row of a group: a label and the fields it sets in the group's base config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    #[serde(default)]
    pub set: Value,
}

/// A base experiment config and the rows that vary it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub label: String,
    /// A connect config (families connect, ablation, gaussianity) or a federated config (fed),
    /// as JSON; fields left out take their defaults.
    pub base: Value,
    pub rows: Vec<Row>,
}

/// What `wsa-lab reproduce` runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub version: u32,
    /// Seeds 0..seeds of every row.
    pub seeds: u64,
    /// What the spec is for, one line (shown in the report).
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub connect: Vec<Group>,
    #[serde(default)]
    pub fed: Vec<Group>,
    #[serde(default)]
    pub ablation: Vec<Group>,
    #[serde(default)]
    pub gaussianity: Vec<Group>,
    /// How the report judges cells, rows and claims: fixed in the spec before any cell runs.
    #[serde(default)]
    pub rules: Rules,
    /// Rows that replicate one condition, pooled for each claim they test.
    #[serde(default)]
    pub pools: Vec<Pool>,
}

/// The report's rules, stated before the numbers are seen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// A cell whose endpoint (A or B of any method) scores a test accuracy below this multiple of
    /// chance (1 / classes) did not learn: its barrier measures nothing, and it is left out of
    /// every summary, interval and count (listed under its row).
    pub learned_over_chance: f64,
    /// A row with fewer valid seeds than this reads "invalid" instead of a verdict.
    pub min_valid_seeds: usize,
    /// A row whose plain pair's mean scope distance is below this has no scope mismatch for WSA
    /// to remove: it is shown, but kept out of the WSA comparisons' counts and pools.
    pub scope_mismatch_below: f64,
    /// The level of every test, after Holm's correction within a family.
    pub alpha: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Self { learned_over_chance: 2.0, min_valid_seeds: 3, scope_mismatch_below: 0.05, alpha: 0.05 }
    }
}

/// Rows of one family that replicate one condition (e.g. "hyperparameter pairs": learning rate,
/// weight decay, optimizer and batch size across data sets and models), and the claims their
/// pooled differences test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub label: String,
    pub family: Family,
    /// Row labels; a trailing `*` matches any ending.
    pub rows: Vec<String>,
    /// Group labels to take the rows from (same patterns); empty: every group of the family.
    #[serde(default)]
    pub groups: Vec<String>,
    pub claims: Vec<PoolClaim>,
}

/// A claim a pool tests: `variant - baseline` of `metric` goes in `direction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolClaim {
    pub variant: String,
    pub baseline: String,
    pub metric: String,
    pub direction: Direction,
}

/// The direction a claim expects a difference to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Lower,
    Higher,
}

impl Pool {
    /// Whether the row `row` of group `group` belongs to the pool.
    pub fn takes(&self, group: &str, row: &str) -> bool {
        let matches = |pattern: &str, label: &str| match pattern.strip_suffix('*') {
            Some(prefix) => label.starts_with(prefix),
            None => label == pattern,
        };
        (self.groups.is_empty() || self.groups.iter().any(|g| matches(g, group)))
            && self.rows.iter().any(|r| matches(r, row))
    }
}

impl Versioned for Spec {
    const KIND: &'static str = "reproduce spec";
    const VERSION: u32 = REPRODUCE_VERSION;
}

impl Spec {
    pub fn groups(&self, family: Family) -> &[Group] {
        match family {
            Family::Connect => &self.connect,
            Family::Fed => &self.fed,
            Family::Ablation => &self.ablation,
            Family::Gaussianity => &self.gaussianity,
        }
    }

    /// Sets the fields of `patch` in every group's base config (e.g. where the data lives).
    pub fn set_everywhere(&mut self, patch: &Value) {
        for groups in [&mut self.connect, &mut self.fed, &mut self.ablation, &mut self.gaussianity] {
            for group in groups.iter_mut() {
                merge(&mut group.base, patch);
            }
        }
    }

    /// Every cell of the families in `only` (all when empty), family by family, row by row,
    /// seed by seed; each config checked, errors naming the group and row.
    pub fn cells(&self, only: &[Family]) -> Result<Vec<Cell>> {
        if self.seeds == 0 || self.seeds > 1000 {
            return Err(WsaError::invalid("reproduce spec `seeds`", self.seeds, "must be between 1 and 1000"));
        }
        let mut cells = Vec::new();
        for family in Family::ALL.into_iter().filter(|f| only.is_empty() || only.contains(f)) {
            for group in self.groups(family) {
                if !group.base.is_object() {
                    return Err(WsaError::invalid(
                        &format!("{} group `{}` base", family.name(), group.label),
                        &group.base,
                        "must be a JSON object (an experiment config)",
                    ));
                }
                for row in &group.rows {
                    let place = format!("{} group `{}` row `{}`", family.name(), group.label, row.label);
                    let mut config = group.base.clone();
                    match &row.set {
                        Value::Null => {}
                        set @ Value::Object(_) => merge(&mut config, set),
                        other => {
                            return Err(WsaError::invalid(
                                &format!("{place} `set`"),
                                other,
                                "must be a JSON object of the fields the row changes",
                            ));
                        }
                    }
                    if config.get("seeds").is_some_and(|n| n.as_u64() != Some(1)) {
                        return Err(WsaError::invalid(
                            &format!("{place} `seeds`"),
                            &config["seeds"],
                            "a reproduce cell is one seed (the spec's `seeds` runs the rest); remove it",
                        ));
                    }
                    for seed in 0..self.seeds {
                        config["seed"] = Value::from(seed);
                        let experiment = CellExperiment::from_json(family, &config).map_err(|e| e.within(&place))?;
                        cells.push(Cell {
                            family,
                            group: group.label.clone(),
                            row: row.label.clone(),
                            seed,
                            experiment,
                        });
                    }
                }
            }
        }
        Ok(cells)
    }
}

/// Sets every field of `patch` in `base`, recursing into objects; other values (arrays, and
/// `null`, which an optional field reads as "none") replace what was there.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

/// The experiment a cell runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "config")]
pub enum CellExperiment {
    Connect(ConnectConfig),
    /// All four variants (FedAvg, FedProx, each with and without WSA) on one split and start.
    Fed(FedConfig),
}

impl CellExperiment {
    fn from_json(family: Family, config: &Value) -> Result<Self> {
        let text = config.to_string();
        if family.is_federated() {
            let config = FedConfig::from_json(&text)?;
            config.validate()?;
            Ok(CellExperiment::Fed(config))
        } else {
            let config = ConnectConfig::from_json(&text)?;
            config.validate()?;
            Ok(CellExperiment::Connect(config))
        }
    }

    /// FedProx's mu for the comparison when the base config names FedAvg.
    const DEFAULT_MU: f64 = 0.01;
}

/// One experiment at one seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub family: Family,
    pub group: String,
    pub row: String,
    pub seed: u64,
    pub experiment: CellExperiment,
}

impl Cell {
    /// The cell's key: a 64-bit FNV-1a hash of its family and full config as JSON (every field,
    /// defaults included), in hex. Two cells with the same key run the same computation; where
    /// the data files live (`data.data_dir`) is left out, so a moved data folder reuses them.
    pub fn hash(&self) -> String {
        let mut experiment = self.experiment.clone();
        match &mut experiment {
            CellExperiment::Connect(c) => c.data.data_dir = PathBuf::new(),
            CellExperiment::Fed(c) => c.data.data_dir = PathBuf::new(),
        }
        let text = serde_json::to_string(&(self.family, &experiment)).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// "family · group · row · seed N", for progress lines and errors.
    pub fn label(&self) -> String {
        format!("{} · {} · {} · seed {}", self.family.name(), self.group, self.row, self.seed)
    }
}

/// The numbers of one variant (a method, a federated run, or a model's state) of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantOutcome {
    pub variant: String,
    /// Metric name to value; a metric that does not apply (a target accuracy never reached)
    /// is absent.
    pub metrics: BTreeMap<String, f64>,
}

/// A finished cell, as written to `cells/<hash>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    pub version: u32,
    pub hash: String,
    pub cell: Cell,
    pub device: String,
    pub seconds: f64,
    pub variants: Vec<VariantOutcome>,
    /// The run's warnings (an endpoint that never learned, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Versioned for CellRecord {
    const KIND: &'static str = "reproduce cell";
    const VERSION: u32 = REPRODUCE_VERSION;
}

impl CellRecord {
    pub fn variant(&self, name: &str) -> Option<&VariantOutcome> {
        self.variants.iter().find(|v| v.variant == name)
    }
}

/// Metric names, shared by the runs that write them and the report that reads them.
pub mod metric {
    pub const ACCURACY_A: &str = "accuracy_a";
    pub const ACCURACY_B: &str = "accuracy_b";
    pub const LOSS_BARRIER: &str = "loss_barrier";
    pub const ACCURACY_BARRIER: &str = "accuracy_barrier";
    pub const SCOPE_DISTANCE: &str = "scope_distance";
    /// The merged model itself at α = 0.5 (the path point nearest it), and what it is judged
    /// against where A and B saw different data (a barrier is floored at 0 there): the mean of
    /// the endpoints and the better endpoint.
    pub const MIDPOINT_LOSS: &str = "midpoint_loss";
    pub const MIDPOINT_ACCURACY: &str = "midpoint_accuracy";
    pub const MIDPOINT_OVER_ENDPOINTS_ACCURACY: &str = "midpoint_over_endpoints_accuracy";
    pub const MIDPOINT_OVER_BEST_ACCURACY: &str = "midpoint_over_best_accuracy";
    pub const FINAL_ACCURACY: &str = "final_accuracy";
    pub const BEST_ACCURACY: &str = "best_accuracy";
    pub const LAST10_ACCURACY: &str = "last10_accuracy";
    pub const ROUNDS_TO_TARGET: &str = "rounds_to_target";
    /// Mean over the scoped layers of |excess kurtosis| and of the KS distance to the fitted
    /// Gaussian; per layer as `kurtosis:<path>` and `ks:<path>`.
    pub const MEAN_ABS_KURTOSIS: &str = "mean_abs_kurtosis";
    pub const MEAN_KS: &str = "mean_ks";
}

/// Where finished cells live: `<dir>/cells/<hash>.json`. A store heals: a cell file that cannot
/// be read as the record of its cell (cut short by a full disk, edited by hand, or written for
/// another config) is moved to `cells/quarantine/` with the reason beside it, and its cell is
/// computed again; only a file from a newer build of WSA Lab stops a run, since this build cannot
/// know what it holds.
pub struct Store {
    dir: PathBuf,
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

/// The folder under `cells/` for set-aside files, and the suffix of the note beside each.
const QUARANTINE: &str = "quarantine";
const REASON_SUFFIX: &str = ".reason.txt";

/// A temporary file of an atomic write older than this was left by a process that was killed
/// mid-write (a cell file is written in milliseconds), and is removed.
const ORPHANED_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(60);

impl Store {
    /// The store of `out`, with the temporary files of killed writers swept away.
    pub fn new(out: &Path) -> Self {
        let store = Self { dir: out.join("cells") };
        store.sweep_orphaned_temporaries();
        store
    }

    /// Where the cells of `out` are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
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

/// Runs one cell on `device`; `seconds` is left at zero for the caller, who has the clock.
pub async fn run_cell(cell: &Cell, device: &ComputeDevice, observer: &mut dyn Observer) -> Result<CellRecord> {
    let (variants, warnings, device_name) = match &cell.experiment {
        CellExperiment::Connect(config) if cell.family == Family::Gaussianity => {
            let outcome = connect::run(config, device, observer).await?;
            (gaussianity_outcomes(config, &outcome.result)?, outcome.result.warnings, outcome.result.device)
        }
        CellExperiment::Connect(config) => {
            let outcome = connect::run(config, device, observer).await?;
            (connect_outcomes(&outcome.result), outcome.result.warnings, outcome.result.device)
        }
        CellExperiment::Fed(config) => {
            let variants = config.variants(true, CellExperiment::DEFAULT_MU);
            let outcome = federated::run(config, &variants, device, observer).await?;
            (fed_outcomes(&outcome.result), Vec::new(), outcome.result.device)
        }
    };
    Ok(CellRecord {
        version: REPRODUCE_VERSION,
        hash: cell.hash(),
        cell: cell.clone(),
        device: device_name,
        seconds: 0.0,
        variants,
        warnings,
    })
}

fn connect_outcomes(result: &ConnectResult) -> Vec<VariantOutcome> {
    result
        .methods
        .iter()
        .map(|m| {
            let mut metrics = BTreeMap::from([
                (metric::ACCURACY_A.into(), m.endpoint_a.accuracy),
                (metric::ACCURACY_B.into(), m.endpoint_b.accuracy),
                (metric::LOSS_BARRIER.into(), m.barriers.loss),
                (metric::ACCURACY_BARRIER.into(), m.barriers.accuracy),
                (metric::SCOPE_DISTANCE.into(), m.scope_distance),
            ]);
            let midpoint = m.path.iter().min_by(|p, q| (p.alpha - 0.5).abs().total_cmp(&(q.alpha - 0.5).abs()));
            if let Some(mid) = midpoint {
                let (a, b) = (m.endpoint_a.accuracy, m.endpoint_b.accuracy);
                metrics.insert(metric::MIDPOINT_LOSS.into(), mid.loss);
                metrics.insert(metric::MIDPOINT_ACCURACY.into(), mid.accuracy);
                metrics.insert(metric::MIDPOINT_OVER_ENDPOINTS_ACCURACY.into(), mid.accuracy - 0.5 * (a + b));
                metrics.insert(metric::MIDPOINT_OVER_BEST_ACCURACY.into(), mid.accuracy - a.max(b));
            }
            VariantOutcome { variant: m.method.name().to_string(), metrics }
        })
        .collect()
}

fn fed_outcomes(result: &FedResult) -> Vec<VariantOutcome> {
    result
        .runs
        .iter()
        .map(|run| {
            let last: Vec<f64> = run.rounds.iter().rev().take(10).map(|r| r.test_accuracy).collect();
            let mut metrics = BTreeMap::from([
                (metric::FINAL_ACCURACY.into(), run.final_accuracy),
                (metric::BEST_ACCURACY.into(), run.best_accuracy),
                (metric::LAST10_ACCURACY.into(), last.iter().sum::<f64>() / last.len().max(1) as f64),
            ]);
            if let Some(round) = run.rounds_to_target {
                metrics.insert(metric::ROUNDS_TO_TARGET.into(), round as f64);
            }
            VariantOutcome { variant: run.name.clone(), metrics }
        })
        .collect()
}

/// Variant names of the gaussianity family: model A before and after training.
pub const AT_INIT: &str = "init";
pub const TRAINED: &str = "trained";

/// Kurtosis and KS distance of each scoped layer of model A at initialisation and trained
/// (plain training: the first method's A).
fn gaussianity_outcomes(config: &ConnectConfig, result: &ConnectResult) -> Result<Vec<VariantOutcome>> {
    let plain = result.methods.iter().find(|m| m.method == Method::PLAIN).ok_or_else(|| {
        WsaError::invalid(
            "gaussianity cell `methods`",
            "its list",
            "must include `plain` (model A trained without WSA)",
        )
    })?;
    let (shape, classes) = config.data.dataset.sample_shape_and_classes();
    let layout = Arc::new(ModelLayout::new(&config.model, &shape, classes)?);
    let (init, _) = connect::initial_params(config, &layout);
    let layers = config.wsa.layers.select(&layout);
    let at_init = scope::layer_reports(&init, &layers);
    let trained: Vec<scope::LayerReport> = plain.layers.iter().map(|l| l.a.clone()).collect();
    let outcome = |variant: &str, reports: &[scope::LayerReport]| {
        let mut metrics = BTreeMap::new();
        for r in reports {
            metrics.insert(format!("kurtosis:{}", r.path), r.fit.excess_kurtosis);
            metrics.insert(format!("ks:{}", r.path), r.fit.ks_distance);
        }
        let n = reports.len().max(1) as f64;
        metrics.insert(
            metric::MEAN_ABS_KURTOSIS.into(),
            reports.iter().map(|r| r.fit.excess_kurtosis.abs()).sum::<f64>() / n,
        );
        metrics.insert(metric::MEAN_KS.into(), reports.iter().map(|r| r.fit.ks_distance).sum::<f64>() / n);
        VariantOutcome { variant: variant.to_string(), metrics }
    };
    Ok(vec![outcome(AT_INIT, &at_init), outcome(TRAINED, &trained)])
}

/// What [`run_all`] reports besides the cells' own events.
pub trait CellProgress: Observer {
    /// Seconds on the caller's clock (the core has none): a cell's wall time is the difference.
    fn seconds(&self) -> f64;
    /// Cell `index` of `total` starts (`cached`: it finished in an earlier run and is read back).
    fn cell_started(&mut self, _index: usize, _total: usize, _cell: &Cell, _cached: bool) {}
    fn cell_finished(&mut self, _index: usize, _total: usize, _record: &CellRecord, _cached: bool) {}
    /// The cell's file was damaged and is now in the quarantine; the cell is computed again.
    fn cell_set_aside(&mut self, _cell: &Cell, _set_aside: &Quarantined) {}
}

/// Runs every cell that `store` does not hold yet, saving each as it finishes; returns all the
/// records, in the cells' order. Stops at the first failing cell (the finished ones stay saved);
/// a damaged cell file is set aside and its cell computed again.
pub async fn run_all(
    cells: &[Cell],
    store: &Store,
    device: &ComputeDevice,
    progress: &mut dyn CellProgress,
) -> Result<Vec<CellRecord>> {
    let mut records = Vec::with_capacity(cells.len());
    for (index, cell) in cells.iter().enumerate() {
        if progress.is_cancelled() {
            return Err(WsaError::Cancelled);
        }
        let cached = match store.load(cell)? {
            Stored::Finished(record) => Some(*record),
            Stored::Missing => None,
            Stored::SetAside(set_aside) => {
                progress.cell_set_aside(cell, &set_aside);
                None
            }
        };
        progress.cell_started(index, cells.len(), cell, cached.is_some());
        let (record, was_cached) = match cached {
            Some(record) => (record, true),
            None => {
                let started = progress.seconds();
                let mut record = run_cell(cell, device, &mut *progress).await.map_err(|e| e.within(cell.label()))?;
                record.seconds = progress.seconds() - started;
                store.save(&record)?;
                (record, false)
            }
        };
        progress.cell_finished(index, cells.len(), &record, was_cached);
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_committed_specs_expand_into_valid_cells_with_distinct_keys() {
        for (name, text) in [("full", FULL_SPEC), ("quick", QUICK_SPEC)] {
            let spec = Spec::from_json(text).unwrap_or_else(|e| panic!("{name} spec: {e}"));
            let cells = spec.cells(&[]).unwrap_or_else(|e| panic!("{name} spec: {e}"));
            for family in Family::ALL {
                assert!(cells.iter().any(|c| c.family == family), "{name} spec has no {} cell", family.name());
            }
            let mut keys: Vec<String> = cells.iter().map(Cell::hash).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), cells.len(), "{name} spec: two cells share a config");
            let only = spec.cells(&[Family::Fed]).expect("fed only");
            assert!(!only.is_empty() && only.iter().all(|c| c.family == Family::Fed));
        }
    }

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
            variants: vec![VariantOutcome { variant: "plain".into(), metrics: BTreeMap::from([("x".into(), 0.5)]) }],
            warnings: Vec::new(),
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

    #[test]
    fn rows_merge_into_the_base_and_bad_rows_are_named() {
        let mut base = json!({"train": {"epochs": 3, "batch_size": 32}, "methods": ["plain"]});
        merge(&mut base, &json!({"train": {"epochs": 5}, "methods": ["plain", "wsa"]}));
        assert_eq!(base, json!({"train": {"epochs": 5, "batch_size": 32}, "methods": ["plain", "wsa"]}));

        let spec = Spec {
            version: REPRODUCE_VERSION,
            seeds: 2,
            description: String::new(),
            connect: vec![Group {
                label: "digits".into(),
                base: json!({"train": {"epochs": 1}}),
                rows: vec![
                    Row { label: "ok".into(), set: json!({"methods": ["plain"]}) },
                    Row { label: "broken".into(), set: json!({"train": {"learning_rate": "fast"}}) },
                ],
            }],
            fed: vec![],
            ablation: vec![],
            gaussianity: vec![],
            rules: Rules::default(),
            pools: vec![],
        };
        let error = spec.cells(&[]).expect_err("bad row").to_string();
        assert!(error.contains("row `broken`") && error.contains("learning_rate"), "{error}");
        let good = Spec {
            connect: vec![Group { rows: vec![spec.connect[0].rows[0].clone()], ..spec.connect[0].clone() }],
            ..spec
        };
        let cells = good.cells(&[]).expect("cells");
        assert_eq!(cells.iter().map(|c| c.seed).collect::<Vec<_>>(), vec![0, 1]);
        assert_ne!(cells[0].hash(), cells[1].hash(), "the seed is part of the key");
        let CellExperiment::Connect(config) = &cells[1].experiment else { panic!("a connect cell") };
        assert_eq!((config.seed, config.train.epochs, config.methods.clone()), (1, 1, vec![Method::PLAIN]));
        // A cell is one seed: a row asking a connect config for several is refused, by name.
        let mut several = good.clone();
        several.connect[0].rows[0].set = json!({"seeds": 3});
        let error = several.cells(&[]).expect_err("seeds in a row").to_string();
        assert!(error.contains("row `ok` `seeds`") && error.contains("one seed"), "{error}");
    }
}
