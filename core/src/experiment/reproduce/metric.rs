//! The numbers a cell records per variant, by name: the runs write them, the report reads them,
//! specs (a pool's claims) and summary.json name them.

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
    /// A federated run's global model after the last round: its weights' std, the mean over
    /// the scoped layers.
    GlobalStd,
    /// A federated run's clients: the symmetric KL between a client's scope and their fusion,
    /// the mean over clients, layers and rounds.
    ClientSpread,
    /// Mean over the scoped layers of |excess kurtosis| and of the KS distance to the fitted
    /// Gaussian.
    MeanAbsKurtosis,
    MeanKs,
}

// Names: the keys in cell files, specs and summary.json; labels: the report's column headings.
crate::choices!(Metric, "metric" {
    AccuracyA => "accuracy_a", "acc A",
    AccuracyB => "accuracy_b", "acc B",
    LossBarrier => "loss_barrier", "loss barrier",
    AccuracyBarrier => "accuracy_barrier", "acc barrier",
    ScopeDistance => "scope_distance", "scope distance",
    MidpointLoss => "midpoint_loss", "midpoint loss",
    MidpointAccuracy => "midpoint_accuracy", "midpoint accuracy",
    MidpointOverEndpointsAccuracy => "midpoint_over_endpoints_accuracy", "midpoint over endpoints accuracy",
    MidpointOverBestAccuracy => "midpoint_over_best_accuracy", "midpoint over best accuracy",
    FinalAccuracy => "final_accuracy", "final acc",
    BestAccuracy => "best_accuracy", "best acc",
    Last10Accuracy => "last10_accuracy", "last-10 mean acc",
    RoundsToTarget => "rounds_to_target", "rounds to target",
    GlobalStd => "global_std", "global model's std",
    ClientSpread => "client_spread", "clients' scope spread",
    MeanAbsKurtosis => "mean_abs_kurtosis", "mean abs excess kurtosis",
    MeanKs => "mean_ks", "mean KS distance",
});

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
