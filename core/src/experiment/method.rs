//! Merging methods as data: a method is how the pair is trained (plain, or with WSA) plus how B
//! is aligned to A before the two are merged (not at all, weight matching, or post-hoc scope
//! rescaling). A connect config lists the methods to compare; every result, table row, file,
//! colour and progress total follows that list, and methods that differ only in alignment share
//! one trained pair.

use crate::error::{Result, WsaError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a pair is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Training {
    /// Cross-entropy only (lambda = 0).
    Plain,
    /// Cross-entropy plus the WSA term with the config's `wsa` settings.
    Wsa,
}

crate::choices!(Training, "training" {
    Plain => "plain", "plain",
    Wsa => "wsa", "WSA",
});

/// How B is aligned to A before merging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alignment {
    None,
    /// Git Re-Basin weight matching: B's hidden units permuted to match A's.
    WeightMatching,
    /// Post-hoc rescaling of every scoped layer of A and B to their fused scope (a baseline;
    /// not the paper's method).
    Rescale,
}

crate::choices!(Alignment, "alignment" {
    None => "none", "no alignment",
    WeightMatching => "weight-matching", "weight matching",
    Rescale => "rescale", "rescaling",
});

/// One merging method. Written in configs and results as its name: `plain`, `wsa`, `wm`,
/// `wm+wsa`, `rescale`, `rescale+wsa`, and with REPAIR `repair`, `wsa+repair`, `wm+repair`,
/// `wm+wsa+repair`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Method {
    pub training: Training,
    pub alignment: Alignment,
    /// REPAIR (Jordan et al. 2023) on every merged model: each hidden unit's activation mean and
    /// std reset to the interpolation of A's and B's (`crate::repair`). Not with rescaling, which
    /// already sets the merged weights' scopes by hand.
    pub repair: bool,
}

impl Method {
    pub const PLAIN: Method = Method::of(Training::Plain, Alignment::None, false);
    pub const WSA: Method = Method::of(Training::Wsa, Alignment::None, false);
    pub const WM: Method = Method::of(Training::Plain, Alignment::WeightMatching, false);
    pub const WM_WSA: Method = Method::of(Training::Wsa, Alignment::WeightMatching, false);
    pub const RESCALE: Method = Method::of(Training::Plain, Alignment::Rescale, false);
    pub const RESCALE_WSA: Method = Method::of(Training::Wsa, Alignment::Rescale, false);
    pub const REPAIR: Method = Method::of(Training::Plain, Alignment::None, true);
    pub const WSA_REPAIR: Method = Method::of(Training::Wsa, Alignment::None, true);
    pub const WM_REPAIR: Method = Method::of(Training::Plain, Alignment::WeightMatching, true);
    pub const WM_WSA_REPAIR: Method = Method::of(Training::Wsa, Alignment::WeightMatching, true);

    /// Every method, in the order tables and menus show them.
    pub const ALL: [Method; 10] = [
        Method::PLAIN,
        Method::WSA,
        Method::WM,
        Method::WM_WSA,
        Method::RESCALE,
        Method::RESCALE_WSA,
        Method::REPAIR,
        Method::WSA_REPAIR,
        Method::WM_REPAIR,
        Method::WM_WSA_REPAIR,
    ];

    pub const fn of(training: Training, alignment: Alignment, repair: bool) -> Method {
        Method { training, alignment, repair }
    }

    /// The method with REPAIR switched `on`, where it applies (not after rescaling).
    pub fn with_repair(self, on: bool) -> Option<Method> {
        let method = Method { repair: on, ..self };
        Method::ALL.contains(&method).then_some(method)
    }

    /// The default comparison: the paper's four combinations (method.md section 5).
    pub const DEFAULT: [Method; 4] = [Method::PLAIN, Method::WSA, Method::WM, Method::WM_WSA];

    pub fn name(self) -> &'static str {
        match (self.alignment, self.training, self.repair) {
            (Alignment::None, Training::Plain, false) => "plain",
            (Alignment::None, Training::Wsa, false) => "wsa",
            (Alignment::WeightMatching, Training::Plain, false) => "wm",
            (Alignment::WeightMatching, Training::Wsa, false) => "wm+wsa",
            (Alignment::Rescale, Training::Plain, _) => "rescale",
            (Alignment::Rescale, Training::Wsa, _) => "rescale+wsa",
            (Alignment::None, Training::Plain, true) => "repair",
            (Alignment::None, Training::Wsa, true) => "wsa+repair",
            (Alignment::WeightMatching, Training::Plain, true) => "wm+repair",
            (Alignment::WeightMatching, Training::Wsa, true) => "wm+wsa+repair",
        }
    }

    pub fn from_name(name: &str) -> Result<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name.trim()).ok_or_else(|| {
            WsaError::invalid("method", format!("`{name}`"), &format!("unknown method; choose from {}", names_list()))
        })
    }

    /// A comma-separated list such as `plain,wsa,wm`.
    pub fn parse_list(text: &str) -> Result<Vec<Method>> {
        let methods: Vec<Method> =
            text.split(',').filter(|s| !s.trim().is_empty()).map(Method::from_name).collect::<Result<_>>()?;
        validate_list(&methods)?;
        Ok(methods)
    }

    /// What the method addresses, in a sentence.
    pub fn describe(self) -> &'static str {
        if self.repair {
            return match (self.alignment, self.training) {
                (Alignment::WeightMatching, Training::Plain) => {
                    "weight matching, then REPAIR: each merged unit's activation mean and std reset to A's and B's interpolation"
                }
                (Alignment::WeightMatching, Training::Wsa) => {
                    "WSA training, weight matching, then REPAIR: scopes at training time and activations at test time"
                }
                (_, Training::Wsa) => "WSA training, then REPAIR on the merged model, without alignment",
                (_, Training::Plain) => {
                    "REPAIR without alignment: each merged unit's activation mean and std reset (a test-time correction)"
                }
            };
        }
        match (self.alignment, self.training) {
            (Alignment::None, Training::Plain) => "plain training, plain averaging: the baseline",
            (Alignment::None, Training::Wsa) => {
                "WSA: the scopes of A and B pulled toward one target during training (scope differences)"
            }
            (Alignment::WeightMatching, Training::Plain) => {
                "weight matching: B's units permuted to match A's before merging (permutation symmetry)"
            }
            (Alignment::WeightMatching, Training::Wsa) => {
                "WSA training, then weight matching: both scope differences and permutations"
            }
            (Alignment::Rescale, Training::Plain) => {
                "post-hoc rescaling of each layer to the fused scope after plain training (a baseline, not WSA)"
            }
            (Alignment::Rescale, Training::Wsa) => "WSA training, then post-hoc rescaling to the fused scope",
        }
    }
}

fn names_list() -> String {
    Method::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
}

/// A list of methods to run: not empty, no method twice.
pub fn validate_list(methods: &[Method]) -> Result<()> {
    if methods.is_empty() {
        return Err(WsaError::invalid("methods", "[]", &format!("name at least one method: {}", names_list())));
    }
    for (i, m) in methods.iter().enumerate() {
        if methods[..i].contains(m) {
            return Err(WsaError::invalid("methods", format!("`{m}`"), "is listed twice; name each method once"));
        }
    }
    Ok(())
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Method {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Method::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown method `{name}`; choose from {}", names_list())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_lists_are_refused() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()).expect("known"), m);
            let json = serde_json::to_string(&m).expect("json");
            assert_eq!(serde_json::from_str::<Method>(&json).expect("back"), m);
        }
        assert_eq!(Method::parse_list("plain, wm+wsa").expect("list"), vec![Method::PLAIN, Method::WM_WSA]);
        let unknown = Method::parse_list("plain,wsm").expect_err("unknown").to_string();
        assert!(unknown.contains("`wsm`") && unknown.contains("wm+wsa"), "{unknown}");
        assert!(Method::parse_list("").expect_err("empty").to_string().contains("at least one"));
        assert!(Method::parse_list("wsa,plain,wsa").expect_err("twice").to_string().contains("twice"));
        assert!(serde_json::from_str::<Method>("\"bogus\"").is_err());
        // REPAIR applies to every method but the rescaled ones, which set their scopes by hand.
        assert_eq!(Method::WM_WSA.with_repair(true), Some(Method::WM_WSA_REPAIR));
        assert_eq!(Method::RESCALE.with_repair(true), None);
        assert_eq!(Method::from_name("wm+wsa+repair").expect("known"), Method::WM_WSA_REPAIR);
    }
}
