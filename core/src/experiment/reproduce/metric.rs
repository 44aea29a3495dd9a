//! The numbers a cell records per variant, by name: the runs write them, the report reads them,
//! specs (a pool's claims) and summary.json name them.

use crate::error::{Result, WsaError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One number of a variant of a cell. Written by its name ([`Metric::name`]). Per-layer numbers
/// of the Gaussianity family have keys of their own ([`kurtosis_of`], [`ks_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    AccuracyA,
    AccuracyB,
    LossBarrier,
    AccuracyBarrier,
    ScopeDistance,
    /// The merged model itself at α = 0.5 (the path point nearest it), and what it is judged
    /// against where A and B saw different data (a barrier is floored at 0 there): the mean of
    /// the endpoints and the better endpoint.
    MidpointLoss,
    MidpointAccuracy,
    MidpointOverEndpointsAccuracy,
    MidpointOverBestAccuracy,
    FinalAccuracy,
    BestAccuracy,
    /// The mean test accuracy of the last 10 rounds.
    Last10Accuracy,
    RoundsToTarget,
    /// Mean over the scoped layers of |excess kurtosis| and of the KS distance to the fitted
    /// Gaussian.
    MeanAbsKurtosis,
    MeanKs,
}

impl Metric {
    pub const ALL: [Metric; 15] = [
        Metric::AccuracyA,
        Metric::AccuracyB,
        Metric::LossBarrier,
        Metric::AccuracyBarrier,
        Metric::ScopeDistance,
        Metric::MidpointLoss,
        Metric::MidpointAccuracy,
        Metric::MidpointOverEndpointsAccuracy,
        Metric::MidpointOverBestAccuracy,
        Metric::FinalAccuracy,
        Metric::BestAccuracy,
        Metric::Last10Accuracy,
        Metric::RoundsToTarget,
        Metric::MeanAbsKurtosis,
        Metric::MeanKs,
    ];

    /// The key in cell files, specs and summary.json.
    pub fn name(self) -> &'static str {
        match self {
            Metric::AccuracyA => "accuracy_a",
            Metric::AccuracyB => "accuracy_b",
            Metric::LossBarrier => "loss_barrier",
            Metric::AccuracyBarrier => "accuracy_barrier",
            Metric::ScopeDistance => "scope_distance",
            Metric::MidpointLoss => "midpoint_loss",
            Metric::MidpointAccuracy => "midpoint_accuracy",
            Metric::MidpointOverEndpointsAccuracy => "midpoint_over_endpoints_accuracy",
            Metric::MidpointOverBestAccuracy => "midpoint_over_best_accuracy",
            Metric::FinalAccuracy => "final_accuracy",
            Metric::BestAccuracy => "best_accuracy",
            Metric::Last10Accuracy => "last10_accuracy",
            Metric::RoundsToTarget => "rounds_to_target",
            Metric::MeanAbsKurtosis => "mean_abs_kurtosis",
            Metric::MeanKs => "mean_ks",
        }
    }

    /// The report's column heading.
    pub fn label(self) -> &'static str {
        match self {
            Metric::AccuracyA => "acc A",
            Metric::AccuracyB => "acc B",
            Metric::LossBarrier => "loss barrier",
            Metric::AccuracyBarrier => "acc barrier",
            Metric::ScopeDistance => "scope distance",
            Metric::MidpointLoss => "midpoint loss",
            Metric::MidpointAccuracy => "midpoint accuracy",
            Metric::MidpointOverEndpointsAccuracy => "midpoint over endpoints accuracy",
            Metric::MidpointOverBestAccuracy => "midpoint over best accuracy",
            Metric::FinalAccuracy => "final acc",
            Metric::BestAccuracy => "best acc",
            Metric::Last10Accuracy => "last-10 mean acc",
            Metric::RoundsToTarget => "rounds to target",
            Metric::MeanAbsKurtosis => "mean abs excess kurtosis",
            Metric::MeanKs => "mean KS distance",
        }
    }

    pub fn from_name(name: &str) -> Result<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            WsaError::invalid(
                "metric",
                format!("`{name}`"),
                &format!("unknown metric; choose from {}", names.join(", ")),
            )
        })
    }
}

/// The key of a layer's excess kurtosis (Gaussianity cells).
pub fn kurtosis_of(layer: &str) -> String {
    format!("kurtosis:{layer}")
}

/// The key of a layer's KS distance to its fitted Gaussian (Gaussianity cells).
pub fn ks_of(layer: &str) -> String {
    format!("ks:{layer}")
}

/// The layer of a [`ks_of`] key.
pub fn layer_of_ks(key: &str) -> Option<&str> {
    key.strip_prefix("ks:")
}

/// Its name, padded as the formatter asks (the CLI's tallies align it).
impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for Metric {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Metric {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Metric::from_name(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_reads_back_from_its_name_and_json() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.name()).expect("known"), m);
            let json = serde_json::to_string(&m).expect("serialise");
            assert_eq!(json, format!("\"{}\"", m.name()));
            assert_eq!(serde_json::from_str::<Metric>(&json).expect("read back"), m);
        }
        assert!(Metric::from_name("barrier").is_err());
        assert_eq!(format!("{:<14}|", Metric::MeanKs), "mean_ks       |");
        assert_eq!(layer_of_ks(&ks_of("layers.0.weight")), Some("layers.0.weight"));
    }
}
