//! What a cell's numbers are of: a connect method, a federated run, or (Gaussianity) model A
//! before and after training.

use crate::error::{Result, WsaError};
use crate::experiment::federated::{self, AggregationKind};
use crate::experiment::method::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One variant of a cell. Written by its name ([`Variant::name`]: "wm+wsa", "fedprox+wsa",
/// "init"), as cell files, specs (a pool's claims) and summary.json carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// A merging method of a connect, ablation or Gaussianity cell.
    Method(Method),
    /// A federated run: the aggregation rule, with or without WSA.
    Federated { aggregation: AggregationKind, wsa: bool },
    /// Model A at initialisation (Gaussianity).
    AtInit,
    /// Model A trained (Gaussianity).
    Trained,
}

impl Variant {
    /// Every variant: the methods, the federated runs, then model A's two states.
    pub fn all() -> impl Iterator<Item = Variant> {
        let federated = AggregationKind::ALL
            .into_iter()
            .flat_map(|aggregation| [false, true].map(|wsa| Variant::Federated { aggregation, wsa }));
        Method::ALL.into_iter().map(Variant::Method).chain(federated).chain([Variant::AtInit, Variant::Trained])
    }

    pub fn name(self) -> String {
        match self {
            Variant::Method(method) => method.name().to_string(),
            Variant::Federated { aggregation, wsa } => federated::run_name(aggregation, wsa),
            Variant::AtInit => "init".to_string(),
            Variant::Trained => "trained".to_string(),
        }
    }

    pub fn from_name(name: &str) -> Result<Variant> {
        Variant::all().find(|v| v.name() == name.trim()).ok_or_else(|| {
            let names: Vec<String> = Variant::all().map(Variant::name).collect();
            WsaError::invalid(
                "variant",
                format!("`{name}`"),
                &format!("unknown variant; choose from {}", names.join(", ")),
            )
        })
    }

    /// The method, for a connect method's variant.
    pub fn method(self) -> Option<Method> {
        match self {
            Variant::Method(method) => Some(method),
            _ => None,
        }
    }
}

/// Its name, padded as the formatter asks (the CLI's tallies align it).
impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.name())
    }
}

impl Serialize for Variant {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Variant::from_name(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_own_name_and_reads_back_from_it() {
        let names: Vec<String> = Variant::all().map(Variant::name).collect();
        for (k, v) in Variant::all().enumerate() {
            assert_eq!(Variant::from_name(&names[k]).expect("known"), v);
            assert!(!names[..k].contains(&names[k]), "`{}` twice", names[k]);
            let json = serde_json::to_string(&v).expect("serialise");
            assert_eq!(serde_json::from_str::<Variant>(&json).expect("read back"), v);
        }
        assert!(names.iter().any(|n| n == "fedprox+wsa") && names.iter().any(|n| n == "wm+wsa+repair"), "{names:?}");
        assert_eq!(format!("{:>8}|", Variant::Method(Method::WM)), "      wm|");
        assert!(Variant::from_name("fedsgd").is_err());
    }
}
