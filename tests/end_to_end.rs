//! The whole mode-connectivity experiment on the embedded digits, on the CPU.

use wsa_core::cancel::{Cancel, Silent};
use wsa_core::device;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::{self, ConnectConfig, ConnectResult, MethodResult, PairDifference};
use wsa_core::experiment::method::{Alignment, Method, Training};
use wsa_core::experiment::seeds::SeedRun;
use wsa_core::experiment::{Event, Observer};
use wsa_lab_tests::small_connect_config;

fn run(config: &connect::ConnectConfig) -> ConnectResult {
    wsa_core::wait(connect::run(config, &device::cpu(), &mut Silent)).expect("connect runs").result
}

fn method(result: &ConnectResult, method: Method) -> &MethodResult {
    result.methods.iter().find(|m| m.method == method).unwrap_or_else(|| panic!("{method} missing"))
}

/// The property the method must have: training with WSA brings the per-layer scopes of A and
/// B closer together than plain training does.
#[test]
fn wsa_brings_the_scopes_of_a_and_b_together() {
    let result = run(&small_connect_config(5));
    let names: Vec<Method> = result.methods.iter().map(|m| m.method).collect();
    assert_eq!(names, Method::DEFAULT, "one result per configured method, in order");
    let trained: Vec<Training> = result.pairs.iter().map(|p| p.training).collect();
    assert_eq!(trained, [Training::Plain, Training::Wsa], "one pair per training, shared by its methods");
    let (plain, wsa) = (method(&result, Method::PLAIN), method(&result, Method::WSA));
    assert!(
        wsa.scope_distance < 0.5 * plain.scope_distance,
        "scope distance with WSA {} should be well below plain {}",
        wsa.scope_distance,
        plain.scope_distance
    );
    // Every pair learned something real.
    for v in &result.methods {
        assert!(
            v.endpoint_a.accuracy > 0.8 && v.endpoint_b.accuracy > 0.8,
            "{}: {:?} {:?}",
            v.method,
            v.endpoint_a,
            v.endpoint_b
        );
        assert_eq!(v.path.len(), 11);
        // The barriers are what the path says: the largest rise above the straight line between
        // the ends.
        let rise = v
            .path
            .iter()
            .map(|p| p.loss - ((1.0 - p.alpha) * v.endpoint_a.loss + p.alpha * v.endpoint_b.loss))
            .fold(f64::NEG_INFINITY, f64::max);
        assert!((v.barriers.loss - rise).abs() < 1e-9, "{}: {} vs {rise}", v.method, v.barriers.loss);
        // The path's ends are the models themselves.
        assert!((v.path[0].accuracy - v.endpoint_a.accuracy).abs() < 1e-9);
        assert!((v.path[10].loss - v.endpoint_b.loss).abs() < 1e-5);
        for layer in &v.layers {
            let total: u64 = layer.histogram.a.iter().sum();
            assert_eq!(total as usize, layer.a.count);
        }
    }
}

/// Keeps every event.
#[derive(Default)]
struct Collect(Vec<Event>);
impl Cancel for Collect {}
impl Observer for Collect {
    fn on_event(&mut self, event: &Event) {
        self.0.push(event.clone());
    }
}

/// The same config and seed give the same numbers on the CPU; another seed does not.
#[test]
fn cpu_runs_are_deterministic() {
    let config = small_connect_config(2);
    let first = run(&config);
    let second = run(&config);
    assert_eq!(first, second);
    let mut other = config.clone();
    other.seed = 1;
    let at_seed_1 = run(&other);
    assert_ne!(at_seed_1.methods[0].path, first.methods[0].path);

    // Over seeds 0 and 1: every seed's numbers are those of its own single run, the rest of the
    // result is seed 0's, and the spread is computed from them.
    let mut events = Collect::default();
    let both = wsa_core::wait(connect::run(&ConnectConfig { seeds: 2, ..config.clone() }, &device::cpu(), &mut events))
        .expect("connect runs")
        .result;
    // Seed 0's answer came while seed 1 ran: its numbers, and the spread so far (one seed).
    let partial: Vec<&ConnectResult> =
        events.0.iter().filter_map(|e| if let Event::SeedResult(r) = e { Some(r.as_ref()) } else { None }).collect();
    assert_eq!(partial.len(), 1);
    assert_eq!((&partial[0].methods, partial[0].seeds.len()), (&first.methods, 1));
    let starts: Vec<u64> =
        events.0.iter().filter_map(|e| if let Event::Seed { seed, .. } = e { Some(*seed) } else { None }).collect();
    assert_eq!(starts, [0, 1]);
    assert_eq!(both.config.seeds, 2);
    assert_eq!(both.seeds.iter().map(|s| s.seed).collect::<Vec<_>>(), [0, 1]);
    for (run, single) in both.seeds.iter().zip([&first, &at_seed_1]) {
        assert_eq!(run, &SeedRun::of(single), "seed {} differs from its single run", run.seed);
    }
    assert_eq!((&both.methods, &both.pairs), (&first.methods, &first.pairs));
    let spread = both.over_seeds().expect("two seeds");
    for ((v, a), b) in spread.iter().zip(&first.methods).zip(&at_seed_1.methods) {
        assert_eq!(v.loss_barrier.n, 2);
        assert!((v.loss_barrier.mean - (a.barriers.loss + b.barriers.loss) / 2.0).abs() < 1e-12);
        assert_eq!(v.path[5].loss.max, a.path[5].loss.max(b.path[5].loss));
    }
    // A config file without `seeds` is one seed, and one seed is not written out.
    let text = serde_json::to_string(&config).expect("json");
    assert!(!text.contains("\"seeds\""), "{text}");
    assert!(ConnectConfig::from_json(&serde_json::to_string(&both.config).expect("json")).is_ok_and(|c| c.seeds == 2));
}

/// The fetched real sets load with their official sizes and first labels (data.md). Ignored
/// unless asked for (`--include-ignored`): `.ci/run` fetches the sets, sets WSA_DATA_DIR and asks.
#[test]
#[ignore = "needs Fashion-MNIST and MNIST fetched (WSA_DATA_DIR); CI runs it"]
fn fetched_sets_have_their_official_sizes_and_labels() {
    let dir = std::env::var_os("WSA_DATA_DIR")
        .expect("WSA_DATA_DIR names the folder scripts/fetch-data.sh fetched Fashion-MNIST and MNIST into");
    let expected = [
        (wsa_core::data::DatasetSpec::FashionMnist, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]),
        (wsa_core::data::DatasetSpec::Mnist, [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]),
    ];
    for (dataset, first_labels) in expected {
        let config =
            wsa_core::data::DataConfig { dataset: dataset.clone(), data_dir: dir.clone().into(), ..Default::default() };
        let split = wsa_core::data::load(&config, 0).expect("fetched set loads");
        assert_eq!((split.train.len(), split.test.len()), (60_000, 10_000), "{dataset:?}");
        assert_eq!(split.train.sample_shape, vec![1, 28, 28]);
        assert_eq!(split.train.labels[..10], first_labels, "{dataset:?}");
        assert!(split.train.class_counts().iter().all(|&n| n > 5000), "{dataset:?}");

        // The embedded subset is the first 5000 test images, unmodified: same labels, and the
        // black pixels (0 before normalising, the minimum after) in the same places.
        let small_set = if dataset == wsa_core::data::DatasetSpec::Mnist {
            wsa_core::data::SmallSet::Mnist
        } else {
            wsa_core::data::SmallSet::FashionMnist
        };
        let small = wsa_core::data::load_small(small_set).expect("embedded subset");
        assert_eq!(small.labels, split.test.labels[..5000], "{dataset:?}");
        let black = split.test.features.iter().copied().fold(f32::INFINITY, f32::min);
        let mismatched = (0..small.features.len())
            .filter(|&i| (small.features[i] == 0.0) != (split.test.features[i] == black))
            .count();
        assert_eq!(mismatched, 0, "{dataset:?}: black pixels differ from the fetched test set");
    }
}

/// Each target source of method.md section 3 ends up as the WSA variant's target.
#[test]
fn every_target_source_sets_the_target_it_promises() {
    use std::sync::Arc;
    use wsa_core::io::save_model;
    use wsa_core::model::ModelLayout;
    use wsa_core::rng::Rng;
    use wsa_core::scope::scope_of;
    use wsa_core::wsa::TargetSource;

    let mut config = small_connect_config(2);

    config.wsa.target = TargetSource::Fixed;
    let fixed = run(&config);
    let layout = ModelLayout::new(&config.model, &[1, 8, 8], 10).expect("layout");
    for layer in &method(&fixed, Method::WSA).layers {
        let spec = &layout.params[layout.index_of(&layer.path).expect("path")];
        assert_eq!(layer.target.mean, 0.0);
        assert!((layer.target.std - spec.init_std(Default::default())).abs() < 1e-12, "{}", layer.path);
    }

    // Reference without a file: A is the plain A, frozen; the target is its scope.
    config.wsa.target = TargetSource::Reference { model: None };
    let reference = run(&config);
    let (plain, wsa) = (method(&reference, Method::PLAIN), method(&reference, Method::WSA));
    assert_eq!(plain.endpoint_a, wsa.endpoint_a, "A is shared");
    for (p, w) in plain.layers.iter().zip(&wsa.layers) {
        assert!((w.target.std - p.a.scope.std).abs() < 1e-6 && (w.target.mean - p.a.scope.mean).abs() < 1e-6);
    }

    // Reference from a file written elsewhere: PyTorch-style names, no WSA Lab metadata.
    let dir = wsa_lab_tests::temp_dir("reference");
    let file = dir.join("torch-style.safetensors");
    let layout = Arc::new(layout);
    let model = layout.init(&mut Rng::new(77));
    let mut scaled = model.clone();
    for v in &mut scaled.values {
        v.iter_mut().for_each(|x| *x *= 3.0);
    }
    save_model(&file, &scaled).expect("save");
    config.wsa.target = TargetSource::Reference { model: Some(file.clone()) };
    let from_file = run(&config);
    for layer in &method(&from_file, Method::WSA).layers {
        let values = scaled.get(&layer.path).expect("path");
        assert!((layer.target.std - scope_of(values).std).abs() < 1e-9, "{}", layer.path);
    }
}

/// Different random starts on the digits: the straight path between the plain pair climbs, and
/// weight matching, which only reorders B's hidden units, lowers the barrier (a real run, the
/// default model and seed).
#[test]
fn weight_matching_lowers_the_barrier_between_different_random_starts() {
    let config = ConnectConfig {
        pair: PairDifference::named("different-init").expect("named pair"),
        methods: vec![Method::PLAIN, Method::WM],
        ..ConnectConfig::default()
    };
    let result = run(&config);
    let (plain, wm) = (method(&result, Method::PLAIN), method(&result, Method::WM));
    assert_eq!(result.pairs.len(), 1, "plain and wm share one trained pair");
    assert_eq!(plain.endpoint_a, wm.endpoint_a, "A is not touched");
    // A permutation keeps B's function: the same accuracy, the same loss up to summation order.
    assert_eq!(plain.endpoint_b.accuracy, wm.endpoint_b.accuracy);
    assert!((plain.endpoint_b.loss - wm.endpoint_b.loss).abs() < 1e-4);
    assert!(
        wm.barriers.loss < plain.barriers.loss,
        "weight matching {} should lower the plain barrier {}",
        wm.barriers.loss,
        plain.barriers.loss
    );
    let report = wm.alignment.as_ref().expect("alignment report");
    assert_eq!(report.kind, Alignment::WeightMatching);
    assert!(report.objective.windows(2).all(|w| w[1] >= w[0]), "{:?}", report.objective);
    assert!(report.permutations.iter().all(|p| p.moved > 0), "{:?}", report.permutations);
    // Scopes do not see the order of units; the weights themselves come closer.
    for layer in &wm.layers {
        let before = layer.b_unaligned.as_ref().expect("B before alignment");
        assert!((before.scope.std - layer.b.scope.std).abs() < 1e-9, "{}", layer.path);
    }
    let total =
        |f: fn(&wsa_core::align::ParamDistance) -> f64| report.distances.iter().map(|d| f(d).powi(2)).sum::<f64>();
    assert!(total(|d| d.after) < total(|d| d.before));
}

/// Post-hoc rescaling maps every scoped layer of A and B onto one target scope.
#[test]
fn rescaling_gives_a_and_b_the_target_scope() {
    let mut config = small_connect_config(2);
    config.methods = vec![Method::RESCALE];
    let result = run(&config);
    let rescaled = method(&result, Method::RESCALE);
    assert_eq!(rescaled.alignment.as_ref().map(|r| r.kind), Some(Alignment::Rescale));
    for layer in &rescaled.layers {
        for side in [&layer.a, &layer.b] {
            assert!((side.scope.mean - layer.target.mean).abs() < 1e-6, "{}", layer.path);
            assert!((side.scope.std - layer.target.std).abs() < 1e-6 * layer.target.std.max(1.0), "{}", layer.path);
        }
    }
    assert!(rescaled.scope_distance < 1e-6);
}

/// Files written by version 1 (plain and WSA only, curves per variant) still load: configs run
/// the two methods they meant, results keep their numbers.
#[test]
fn version_1_configs_and_summaries_load() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1");
    let text = std::fs::read_to_string(fixtures.join("config.json")).expect("v1 config");
    let config = ConnectConfig::from_json(&text).expect("v1 config migrates");
    assert_eq!(config.methods, [Method::PLAIN, Method::WSA]);
    let old: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(old["version"], 1);
    assert_eq!(config.seed, old["seed"].as_u64().expect("seed"));

    let text = std::fs::read_to_string(fixtures.join("summary.json")).expect("v1 summary");
    let result = ConnectResult::from_json(&text).expect("v1 summary migrates");
    let old: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(result.methods.len(), 2);
    for (new, old) in result.methods.iter().zip(old["variants"].as_array().expect("variants")) {
        assert_eq!(new.method.name(), old["name"].as_str().expect("name"));
        assert_eq!(Some(new.barriers.loss), old["barriers"]["loss"].as_f64());
        assert!(new.alignment.is_none());
        let pair = result.pairs.iter().find(|p| p.training == new.method.training).expect("pair");
        assert_eq!(pair.curves.len(), old["curves"].as_array().expect("curves").len());
    }
    assert_eq!(result.config.methods, [Method::PLAIN, Method::WSA]);
    // What it reads back it writes as the current version.
    let again = ConnectResult::from_json(&serde_json::to_string(&result).expect("json")).expect("v2 reads");
    assert_eq!(again, result);
}

/// Between two different random starts on the digits, a trained Bezier (and polygonal) curve
/// finds the low-loss path the straight line misses: its mean loss and its barrier are below the
/// line's, and it runs through A and B.
#[test]
fn a_trained_curve_goes_around_the_barrier_of_the_line() {
    use wsa_core::experiment::curve::{CurveConfig, CurveKind};
    for kind in [CurveKind::Bezier, CurveKind::Polychain] {
        let config = ConnectConfig {
            pair: PairDifference::Seed { same_init: false },
            methods: vec![Method::PLAIN],
            curve: Some(CurveConfig { kind, ..CurveConfig::default() }),
            ..ConnectConfig::default()
        };
        let result = run(&config);
        let line = &result.methods[0];
        let curve = line.curve.as_ref().expect("a curve");
        assert_eq!(curve.kind, kind);
        assert!(line.barriers.loss > 0.2, "{kind:?}: the line should have a barrier here: {:?}", line.barriers);
        assert!(
            curve.mean_loss < 0.8 * curve.line_mean_loss,
            "{kind:?}: mean loss along the curve {} vs the line {}",
            curve.mean_loss,
            curve.line_mean_loss
        );
        assert!(
            curve.barriers.loss < 0.5 * line.barriers.loss,
            "{kind:?}: {:?} vs {:?}",
            curve.barriers,
            line.barriers
        );
        assert_eq!(curve.path.len(), line.path.len());
        let (first, last) = (curve.path[0], curve.path[curve.path.len() - 1]);
        assert!((first.loss - line.endpoint_a.loss).abs() < 1e-5 && (last.loss - line.endpoint_b.loss).abs() < 1e-5);
    }
    let mut bad =
        ConnectConfig { curve: Some(CurveConfig { epochs: 0, ..CurveConfig::default() }), ..Default::default() };
    let err = wsa_core::wait(connect::run(&bad, &device::cpu(), &mut Silent)).expect_err("0 epochs");
    assert!(err.to_string().contains("curve.epochs"), "{err}");
    bad.curve = Some(CurveConfig { learning_rate: -1.0, ..CurveConfig::default() });
    let err = wsa_core::wait(connect::run(&bad, &device::cpu(), &mut Silent)).expect_err("negative rate");
    assert!(err.to_string().contains("curve.learning_rate"), "{err}");
}

/// The loss plane through A, B and a trained curve's control point: the models sit where the
/// basis puts them, and the grid's loss at A and B is their own loss evaluated directly.
#[test]
fn the_loss_plane_holds_the_models_where_they_are() {
    use wsa_core::experiment::curve::{self, CurveConfig, CurveKind};
    use wsa_core::experiment::plane::{self, PlaneConfig};
    use wsa_core::train::{DeviceData, evaluate};
    let config = ConnectConfig {
        pair: PairDifference::Seed { same_init: false },
        methods: vec![Method::PLAIN],
        ..ConnectConfig::default()
    };
    let cpu = device::cpu();
    let outcome = wsa_core::wait(connect::run(&config, &cpu, &mut Silent)).expect("connect runs");
    let pair = &outcome.models[0];
    let split = wsa_core::data::load(&config.data, config.seed).expect("data");
    let (train, test) = (DeviceData::upload(&split.train, &cpu.device), DeviceData::upload(&split.test, &cpu.device));
    let (a, b) = (pair.a.to_device(&cpu.device), pair.b.to_device(&cpu.device));
    let theta = wsa_core::wait(curve::train_control_point(&CurveConfig::default(), 64, &a, &b, &train, 0, &mut Silent))
        .expect("a curve");
    let theta = wsa_core::wait(theta.to_host()).expect("to host");
    // Margin 0 and a 2 x 2 grid: the corners are the extremes of the three models' coordinates
    // (a margin of 0 keeps them exactly: no side is widened to a share of the other).
    let tight = PlaneConfig { grid: 2, margin: 0.0 };
    let models = (&pair.a, &pair.b, &theta);
    let plane = wsa_core::wait(plane::evaluate_plane(
        &tight,
        models,
        "θ",
        Some(CurveKind::Bezier),
        &test,
        None,
        &cpu.device,
        &mut Silent,
    ))
    .expect("a plane");
    let [pa, pb, pt] = [&plane.models[0], &plane.models[1], &plane.models[2]];
    assert_eq!((pa.x, pa.y, pb.y), (0.0, 0.0, 0.0));
    assert!(pt.y > 0.0 && (0.0..=pb.x).contains(&pt.x), "θ between A and B, off the line: {pt:?} {pb:?}");
    assert_eq!((plane.xs[0], plane.xs[1], plane.ys[0]), (0.0, pb.x, 0.0));
    for (k, model) in [(0, &a), (1, &b)] {
        let direct = wsa_core::wait(evaluate(&model.layout, &model.tensors, &test)).expect("evaluate");
        let on_grid = plane.loss[k];
        assert!(
            (on_grid - direct.loss).abs() < 1e-4 * direct.loss.max(1.0),
            "grid {on_grid} vs direct {}",
            direct.loss
        );
    }
    // The curve runs from A to B through the plane, as far from the line as half θ's height.
    let (_, path) = plane.curve.as_ref().expect("the curve");
    let (first, middle, last) = (path[0], path[path.len() / 2], path[path.len() - 1]);
    assert_eq!(first, [0.0, 0.0]);
    assert!((last[0] - pb.x).abs() < 1e-9 && last[1].abs() < 1e-9);
    assert!((middle[1] - 0.5 * pt.y).abs() < 1e-9, "{middle:?} vs θ {pt:?}");
    // A bad grid and a third model on the line are refused by name.
    let err = wsa_core::wait(plane::evaluate_plane(
        &PlaneConfig { grid: 0, margin: 0.2 },
        models,
        "θ",
        None,
        &test,
        None,
        &cpu.device,
        &mut Silent,
    ))
    .expect_err("grid 0");
    assert!(err.to_string().contains("plane.grid"), "{err}");
}
