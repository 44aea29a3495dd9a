//! Aligning a trained B to its A as a method says: not at all, by weight matching (B's units
//! permuted), or by rescaling both to the fused scope; with a report of what the alignment did.

use super::training::PairRun;
use super::{AlignmentReport, ConnectConfig};
use crate::align::{self, PermutationSpec};
use crate::error::Result;
use crate::experiment::method::{Alignment, Method};
use crate::experiment::{Event, Observer};
use crate::model::Params;
use crate::rng::Rng;
use crate::scope::Scope;

/// A pair ready to merge: A and B after the method's alignment.
pub(super) struct AlignedPair {
    pub(super) a: Params,
    pub(super) b: Params,
    /// B as trained, when the method moved it.
    pub(super) b_unaligned: Option<Params>,
    pub(super) target: Vec<Scope>,
    pub(super) report: Option<AlignmentReport>,
}

/// Aligns B to A (or rescales both) as `method` says.
pub(super) async fn align_pair(
    config: &ConnectConfig,
    layers: &[usize],
    method: Method,
    run: &PairRun,
    observer: &mut dyn Observer,
) -> Result<AlignedPair> {
    let report = |kind| AlignmentReport {
        kind,
        sweeps: 0,
        objective: Vec::new(),
        permutations: Vec::new(),
        distances: Vec::new(),
    };
    let (a, b, new_a, new_b, target, mut report) = match method.alignment {
        Alignment::None => {
            return Ok(AlignedPair {
                a: run.a.clone(),
                b: run.b.clone(),
                b_unaligned: None,
                target: run.target.clone(),
                report: None,
            });
        }
        Alignment::WeightMatching => {
            observer.on_event(&Event::Stage(format!("{method}: matching B's units to A's (weight matching)")));
            let (a, b) = (run.a.to_host().await?, run.b.to_host().await?);
            let mut rng = Rng::derive(config.seed, "weight-matching");
            let matching = align::weight_matching(&a, &b, &config.weight_matching, &mut rng, observer).await?;
            let aligned = align::permute(&b, &PermutationSpec::new(&a.layout)?, &matching.perms);
            let report = AlignmentReport {
                sweeps: matching.sweeps,
                objective: matching.objective,
                permutations: matching.permutations,
                ..report(Alignment::WeightMatching)
            };
            (a.clone(), b, a, aligned, run.target.clone(), report)
        }
        Alignment::Rescale => {
            observer.on_event(&Event::Stage(format!("{method}: rescaling A and B to the fused scope")));
            let (a, b) = (run.a.to_host().await?, run.b.to_host().await?);
            let (ra, rb, target) = align::rescale_pair(&a, &b, layers, config.wsa.fusion)?;
            (a, b, ra, rb, target, report(Alignment::Rescale))
        }
    };
    report.distances = align::distances(&a, &b, &new_a, &new_b);
    let device = run.a.device();
    Ok(AlignedPair {
        a: new_a.to_device(&device),
        b: new_b.to_device(&device),
        b_unaligned: Some(run.b.clone()),
        target,
        report: Some(report),
    })
}
