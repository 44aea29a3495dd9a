//! The whole mode-connectivity experiment on the embedded digits, on the CPU.

use wsa_core::device;
use wsa_core::experiment::Silent;
use wsa_core::experiment::connect::{self, ConnectResult};
use wsa_lab_tests::small_connect_config;

fn run(config: &connect::ConnectConfig) -> ConnectResult {
    wsa_core::wait(connect::run(config, &device::cpu(), &mut Silent)).expect("connect runs").result
}

/// The property the method must have: training with WSA brings the per-layer scopes of A and
/// B closer together than plain training does.
#[test]
fn wsa_brings_the_scopes_of_a_and_b_together() {
    let result = run(&small_connect_config(5));
    let [plain, wsa] = &result.variants[..] else { panic!("two variants expected") };
    assert_eq!((plain.name.as_str(), wsa.name.as_str()), ("plain", "wsa"));
    assert!(
        wsa.scope_distance < 0.5 * plain.scope_distance,
        "scope distance with WSA {} should be well below plain {}",
        wsa.scope_distance,
        plain.scope_distance
    );
    // Both pairs learned something real.
    for v in &result.variants {
        assert!(
            v.endpoint_a.accuracy > 0.8 && v.endpoint_b.accuracy > 0.8,
            "{}: {:?} {:?}",
            v.name,
            v.endpoint_a,
            v.endpoint_b
        );
        assert_eq!(v.path.len(), 11);
        assert!(v.barriers.loss >= 0.0 && v.barriers.accuracy >= 0.0);
        // The path's ends are the models themselves.
        assert!((v.path[0].accuracy - v.endpoint_a.accuracy).abs() < 1e-9);
        assert!((v.path[10].loss - v.endpoint_b.loss).abs() < 1e-5);
        for layer in &v.layers {
            let total: u64 = layer.histogram.a.iter().sum();
            assert_eq!(total as usize, layer.a.count);
        }
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
    assert_ne!(run(&other).variants[0].path, first.variants[0].path);
}

/// The fetched real sets load with their official sizes and first labels (data.md). `.ci/run`
/// fetches them and sets WSA_DATA_DIR; elsewhere the test says loudly that it did not run.
#[test]
fn fetched_sets_have_their_official_sizes_and_labels() {
    let Some(dir) = std::env::var_os("WSA_DATA_DIR") else {
        eprintln!(
            "\n!!! WSA_DATA_DIR is not set: Fashion-MNIST/MNIST checks did NOT run (run scripts/fetch-data.sh and set it) !!!\n"
        );
        return;
    };
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
    for layer in &fixed.variants[1].layers {
        let spec = &layout.params[layout.index_of(&layer.path).expect("path")];
        assert_eq!(layer.target.mean, 0.0);
        assert!((layer.target.std - spec.init_std()).abs() < 1e-12, "{}", layer.path);
    }

    // Reference without a file: A is the plain A, frozen; the target is its scope.
    config.wsa.target = TargetSource::Reference { model: None };
    let reference = run(&config);
    let (plain, wsa) = (&reference.variants[0], &reference.variants[1]);
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
    for layer in &from_file.variants[1].layers {
        let values = scaled.get(&layer.path).expect("path");
        assert!((layer.target.std - scope_of(values).std).abs() < 1e-9, "{}", layer.path);
    }
    std::fs::remove_dir_all(&dir).ok();
}
