//! The spec `wsa-lab reproduce` runs: its families of groups and rows, the rules the report
//! judges by and the pools of rows it tests claims on, fixed before any cell runs; and its
//! expansion into cells, one per row and seed.

use super::{Cell, CellExperiment, Metric, REPRODUCE_VERSION, Variant};
use crate::error::{Result, WsaError};
use crate::experiment::Versioned;
use crate::experiment::patch::merge_patch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

// Labels: the report's section titles.
crate::choices!(Family, "family" {
    Connect => "connect", "Mode connectivity",
    Fed => "fed", "Federated learning",
    Ablation => "ablation", "Ablations of WSA",
    Gaussianity => "gaussianity", "Gaussianity of trained weights",
});

impl Family {
    /// Whether the family's cells are federated runs (the others are connect runs).
    pub(super) fn is_federated(self) -> bool {
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
    pub variant: Variant,
    pub baseline: Variant,
    pub metric: Metric,
    pub direction: Direction,
}

/// The direction a claim expects a difference to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Lower,
    Higher,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Lower => "lower",
            Direction::Higher => "higher",
        }
    }
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
                merge_patch(&mut group.base, patch);
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
                        set @ Value::Object(_) => merge_patch(&mut config, set),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::method::Method;
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

    #[test]
    fn rows_are_merged_into_their_base_and_bad_rows_are_named() {
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
