//! Federated learning on the embedded digits with a few clients (method.md section 6).

use std::sync::Arc;
use wsa_core::cancel::Silent;
use wsa_core::device;
use wsa_core::experiment::federated::{self, Aggregation, ClientSplit, FedConfig, FedOutcome, FedTarget};
use wsa_core::merge::weighted_average;
use wsa_core::model::{ModelConfig, ModelLayout};
use wsa_core::rng::Rng;
use wsa_core::scope::{device_scopes, fuse};
use wsa_core::train::{DeviceData, evaluate};

fn config(rounds: usize, local_epochs: usize) -> FedConfig {
    let mut c = FedConfig { clients: 4, rounds, split: ClientSplit::Dirichlet { alpha: 0.5 }, ..FedConfig::default() };
    c.local.epochs = local_epochs;
    c
}

fn run(c: &FedConfig, variants: &[(Aggregation, bool)]) -> FedOutcome {
    wsa_core::wait(federated::run(c, variants, &device::cpu(), &mut Silent)).expect("federated run")
}

#[test]
fn fedavg_of_identical_clients_is_the_client() {
    let layout = Arc::new(ModelLayout::new(&ModelConfig::default(), &[1, 8, 8], 10).expect("layout"));
    let params = layout.init(&mut Rng::new(3)).to_device(&device::cpu().device);
    let average = weighted_average(&[&params, &params, &params], &[120.0, 30.0, 850.0]).expect("average");
    let (a, b) = (wsa_core::wait(average.to_host()).expect("read"), wsa_core::wait(params.to_host()).expect("read"));
    for (x, y) in a.values.iter().flatten().zip(b.values.iter().flatten()) {
        assert!((x - y).abs() <= 1e-6 * y.abs().max(1e-3), "{x} vs {y}");
    }
}

#[test]
fn a_round_with_no_local_epochs_leaves_the_model_unchanged() {
    let outcome = run(&config(1, 0), &[(Aggregation::FedAvg, false)]);
    let (_, global) = &outcome.finals[0];
    for (x, y) in global.values.iter().flatten().zip(outcome.initial.values.iter().flatten()) {
        assert!((x - y).abs() <= 1e-6 * y.abs().max(1e-3), "{x} vs {y}");
    }
    // Its reported metrics are the initial model's.
    let split = wsa_core::data::load(&outcome.result.config.data, outcome.result.config.seed).expect("data");
    let cpu = device::cpu();
    let test = DeviceData::upload(&split.test, &cpu.device);
    let init = outcome.initial.to_device(&cpu.device);
    let metrics = wsa_core::wait(evaluate(&init.layout, &init.tensors, &test)).expect("evaluate");
    let round = &outcome.result.runs[0].rounds[0];
    assert!((round.test_loss - metrics.loss).abs() < 1e-5 && (round.test_accuracy - metrics.accuracy).abs() < 1e-9);
}

#[test]
fn federated_training_learns_is_deterministic_and_compares_four_methods() {
    let mut c = config(5, 2);
    c.target_accuracy = Some(0.8);
    let variants = federated::comparison(0.01);
    let first = run(&c, &variants);
    let result = &first.result;
    assert_eq!(
        result.runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["fedavg", "fedavg+wsa", "fedprox", "fedprox+wsa"]
    );
    assert_eq!(
        result.clients.iter().map(|c| c.samples).sum::<usize>(),
        1348,
        "every training sample belongs to one client"
    );
    for r in &result.runs {
        assert_eq!(r.rounds.len(), 5);
        assert!(r.final_accuracy > 0.85, "{}: {}", r.name, r.final_accuracy);
        assert!(r.rounds_to_target.is_some(), "{} never reached 0.8", r.name);
        assert_eq!(r.rounds[0].target.len(), result.layers.len());
    }
    // WSA and FedProx change the training (losses differ), the split does not.
    let losses: Vec<f64> = result.runs.iter().map(|r| r.rounds[4].test_loss).collect();
    assert!(losses.windows(2).all(|w| w[0] != w[1]), "{losses:?}");
    assert_eq!(run(&c, &variants).result, first.result, "same config and seed, same numbers");
}

/// Each target source broadcasts what it names: the fusion of the clients' returned scopes, the
/// averaged global model's scope, or the initial model's scope in every round; the clients'
/// spread is measured around their fusion whichever target is broadcast.
#[test]
fn each_target_source_broadcasts_the_scope_it_names() {
    let mut c = config(3, 1);
    let with_wsa = [(Aggregation::FedAvg, true)];
    let mut outcomes = Vec::new();
    for target in FedTarget::ALL {
        c.target = target;
        outcomes.push((target, run(&c, &with_wsa)));
    }
    let dev = device::cpu().device;
    let layout = Arc::new(ModelLayout::new(&c.model, &[1, 8, 8], 10).expect("layout"));
    let layers = c.wsa.layers.select(&layout);
    let initial = wsa_core::wait(device_scopes(&outcomes[0].1.initial.to_device(&dev), &layers)).expect("scopes");
    for (target, outcome) in &outcomes {
        let run = &outcome.result.runs[0];
        for round in &run.rounds {
            let weights: Vec<f64> = round.clients.iter().map(|&k| outcome.result.clients[k].samples as f64).collect();
            let fused = fuse(&round.client_scopes, &weights, c.wsa.fusion).expect("fuse");
            let expected = match target {
                FedTarget::Fused => &fused,
                FedTarget::Global => &round.global,
                FedTarget::Initial => &initial,
            };
            assert_eq!(&round.target, expected, "{target:?}, round {}", round.round);
            assert_eq!(round.client_spread, federated::client_spread(&round.client_scopes, &fused));
            assert_eq!(round.global.len(), layers.len());
        }
        // The global model's scope recorded is the one of the final model.
        let last = wsa_core::wait(device_scopes(&outcome.finals[0].1.to_device(&dev), &layers)).expect("scopes");
        assert_eq!(run.rounds.last().expect("a round").global, last);
    }
    // The target changes the training: the three runs differ after the first round.
    let losses: Vec<f64> = outcomes.iter().map(|(_, o)| o.result.runs[0].rounds[2].test_loss).collect();
    assert!(losses[0] != losses[1] && losses[1] != losses[2] && losses[0] != losses[2], "{losses:?}");
    // The default stays out of the config file (reproduce keys of older configs are unchanged).
    let written = |c: &FedConfig| serde_json::to_value(c).expect("json").get("target").cloned();
    c.target = FedTarget::Fused;
    assert_eq!(written(&c), None);
    c.target = FedTarget::Initial;
    assert_eq!(written(&c), Some(serde_json::json!("initial")));
}

#[test]
fn absurd_federated_settings_are_refused() {
    for bad in [
        FedConfig { clients: 0, ..FedConfig::default() },
        FedConfig { fraction: 0.0, ..FedConfig::default() },
        FedConfig { rounds: 0, ..FedConfig::default() },
        FedConfig { split: ClientSplit::Dirichlet { alpha: -1.0 }, ..FedConfig::default() },
        FedConfig { aggregation: Aggregation::FedProx { mu: f64::NAN }, ..FedConfig::default() },
    ] {
        let err =
            wsa_core::wait(federated::run(&bad, &[(Aggregation::FedAvg, false)], &device::cpu(), &mut Silent)).err();
        assert!(matches!(err, Some(wsa_core::WsaError::InvalidConfig { .. })), "{err:?}");
    }
}

/// A run whose loss stops being finite is a result: it keeps its rounds before, says where and
/// why it stopped, and the other runs of the comparison finish.
#[test]
fn a_run_that_diverges_is_recorded_where_it_stopped_and_the_others_finish() {
    // The global model's scope as WSA's target, pulled hard at a large learning rate: the first
    // rounds stay finite and a later one diverges (found with `wsa-lab fed`: round 3).
    let mut c = config(4, 1);
    c.wsa.lambda = 200.0;
    c.local.learning_rate = 0.2;
    c.target = FedTarget::Global;
    let outcome = run(&c, &[(Aggregation::FedAvg, false), (Aggregation::FedAvg, true)]);
    let (plain, wsa) = (&outcome.result.runs[0], &outcome.result.runs[1]);
    let divergence = wsa.diverged.as_ref().expect("lambda 200 toward the global scope at learning rate 0.2 diverges");
    assert!(divergence.round >= 2, "a round after the first diverges: {divergence:?}");
    assert_eq!(wsa.rounds.len(), divergence.round - 1, "the rounds before the one that diverged");
    assert!(divergence.reason.contains("diverged"), "{}", divergence.reason);
    assert!(wsa.rounds.iter().all(|r| r.test_loss.is_finite()));
    assert_eq!((plain.diverged.as_ref(), plain.rounds.len()), (None, 4), "{plain:?}");
    // The final model of the run that stopped is the global model after its last finite round:
    // the same run, ended there by its config, ends with the same weights.
    let (_, last) = &outcome.finals[1];
    assert!(last.values.iter().flatten().all(|x| x.is_finite()));
    let shorter = FedConfig { rounds: divergence.round - 1, ..c.clone() };
    let ended = run(&shorter, &[(Aggregation::FedAvg, true)]);
    assert_eq!(ended.result.runs[0].diverged, None);
    assert_eq!(ended.finals[0].1.values, last.values, "the last finite global model");
}

/// A federation at several seeds: the headline runs are the first seed's, and every seed's
/// accuracies are those of the federation run at that seed alone.
#[test]
fn a_federation_over_seeds_holds_every_seeds_accuracies() {
    let c = FedConfig { seeds: 3, ..config(2, 1) };
    let variants = [(Aggregation::FedAvg, false), (Aggregation::FedAvg, true)];
    let outcome = run(&c, &variants);
    let seeds = &outcome.result.seeds;
    assert_eq!(seeds.iter().map(|s| s.seed).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(outcome.result.config, c, "the result answers the config asked for");
    for (k, run_k) in outcome.result.runs.iter().enumerate() {
        assert_eq!(
            (seeds[0].runs[k].name.as_str(), seeds[0].runs[k].final_accuracy),
            (run_k.name.as_str(), run_k.final_accuracy)
        );
    }
    let alone = run(&FedConfig { seed: 2, seeds: 1, ..c.clone() }, &variants);
    assert!(alone.result.seeds.is_empty(), "one seed: no table over seeds");
    for (k, run_k) in alone.result.runs.iter().enumerate() {
        assert_eq!(seeds[2].runs[k].final_accuracy, run_k.final_accuracy, "{}", run_k.name);
    }
    let (higher, compared) = outcome.result.seeds_higher("fedavg+wsa", "fedavg");
    let expected = seeds.iter().filter(|s| s.runs[1].final_accuracy > s.runs[0].final_accuracy).count();
    assert_eq!((higher, compared), (expected, 3));
    assert_eq!(
        outcome.result.seed_comparisons(),
        vec![format!("fedavg+wsa ended higher than fedavg on {expected} of 3 seeds.")]
    );
    // Seeds are validated like every other setting.
    let refused = FedConfig { seeds: 0, ..c }.validate().expect_err("no seeds");
    assert!(refused.to_string().contains("seeds"), "{refused}");
}
