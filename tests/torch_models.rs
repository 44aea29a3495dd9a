//! Models written by real PyTorch code (tests/fixtures/torch, made by its make.py) read by their
//! names and shapes (`wsa_core::infer`): the layouts inferred, the logits equal to PyTorch's, a
//! model the lab writes loading back into the same PyTorch class, and files that cannot be read
//! refused with a sentence naming the file, the tensor and the fix.
//!
//! The round trip runs PyTorch itself when `TORCH_PYTHON` names a Python with torch and
//! safetensors (e.g. /var/cache/wsa-lab/torch-venv/bin/python); CI has no torch, so there the
//! test checks the written file's names and shapes against the state_dict PyTorch wrote.

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::path::{Path, PathBuf};
use wsa_core::WsaError;
use wsa_core::infer::{self, LayoutHints};
use wsa_core::model::{Activation, HostParams, LayerSpec, ModelConfig};
use wsa_lab_tests::{TorchFixture, temp_dir};

const MODELS: [&str; 4] = ["sequential_mlp", "batchnorm_cnn", "groupnorm_cnn", "residual_gn_cnn"];

fn fixture(file: &str) -> PathBuf {
    wsa_lab_tests::torch_fixture_path(file)
}

fn model_file(name: &str) -> PathBuf {
    fixture(&format!("{name}.safetensors"))
}

fn load(name: &str) -> HostParams {
    TorchFixture::load(name).params
}

/// Every tensor's name and shape in a safetensors file, sorted by name.
fn names_and_shapes(bytes: &[u8]) -> Vec<(String, Vec<usize>)> {
    let file = SafeTensors::deserialize(bytes).expect("safetensors");
    let mut all: Vec<(String, Vec<usize>)> =
        file.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect();
    all.sort();
    all
}

fn relu() -> LayerSpec {
    LayerSpec::Activation { function: Activation::Relu }
}

fn linear(name: &str, outputs: usize) -> LayerSpec {
    LayerSpec::Linear { name: name.into(), outputs, bias: true }
}

fn conv(name: &str, channels: usize, stride: usize, padding: usize) -> LayerSpec {
    LayerSpec::Conv2d { name: name.into(), channels, kernel: 3, stride, padding, bias: true }
}

#[test]
fn inferred_layouts_are_the_models_pytorch_wrote() {
    let gn = |name: &str, groups: usize| LayerSpec::GroupNorm { name: name.into(), groups };
    let unbiased = |name: &str, channels: usize, stride: usize| LayerSpec::Conv2d {
        name: name.into(),
        channels,
        kernel: 3,
        stride,
        padding: 1,
        bias: false,
    };
    let block = |stage: &str, channels: usize, groups: usize| LayerSpec::Residual {
        layers: vec![
            unbiased(&format!("{stage}.0.conv1"), channels, 1),
            gn(&format!("{stage}.0.gn1"), groups),
            relu(),
            unbiased(&format!("{stage}.0.conv2"), channels, 1),
            gn(&format!("{stage}.0.gn2"), groups),
        ],
    };
    let expected: [(&str, Vec<usize>, Vec<LayerSpec>); 4] = [
        ("sequential_mlp", vec![784], vec![linear("1", 32), relu(), linear("3", 16), relu(), linear("5", 10)]),
        (
            "batchnorm_cnn",
            vec![1, 12, 12],
            vec![
                conv("conv1", 4, 1, 0),
                LayerSpec::BatchNorm { name: "bn1".into() },
                relu(),
                conv("conv2", 8, 1, 0),
                relu(),
                LayerSpec::MaxPool2d { kernel: 2, stride: None },
                LayerSpec::Flatten,
                linear("fc1", 16),
                relu(),
                linear("fc2", 10),
            ],
        ),
        (
            "groupnorm_cnn",
            vec![3, 16, 16],
            vec![
                conv("features.0", 8, 2, 1),
                LayerSpec::GroupNorm { name: "features.1".into(), groups: 2 },
                relu(),
                LayerSpec::MaxPool2d { kernel: 2, stride: None },
                conv("features.4", 8, 1, 1),
                LayerSpec::GroupNorm { name: "features.5".into(), groups: 4 },
                relu(),
                LayerSpec::AvgPool2d { kernel: 2, stride: None },
                LayerSpec::Flatten,
                linear("classifier.0", 12),
                relu(),
                linear("classifier.2", 5),
            ],
        ),
        // Listed in its layout file: residual connections leave no trace in names and shapes.
        (
            "residual_gn_cnn",
            vec![3, 8, 8],
            vec![
                unbiased("stem.0", 8, 1),
                gn("stem.1", 2),
                relu(),
                block("stage1", 8, 2),
                relu(),
                unbiased("down2.0", 16, 2),
                gn("down2.1", 4),
                relu(),
                block("stage2", 16, 4),
                relu(),
                LayerSpec::AvgPool2d { kernel: 4, stride: None },
                LayerSpec::Flatten,
                linear("fc", 5),
            ],
        ),
    ];
    for (name, sample_shape, layers) in expected {
        let params = load(name);
        let layout = &params.layout;
        assert_eq!(layout.config, ModelConfig::Stack { layers, init: Default::default() }, "{name}");
        assert_eq!(layout.sample_shape, sample_shape, "{name}");
        // Every tensor PyTorch wrote is a parameter of the layout, in its shape, but the
        // BatchNorm counter.
        let bytes = std::fs::read(model_file(name)).expect("fixture");
        let written: Vec<(String, Vec<usize>)> =
            names_and_shapes(&bytes).into_iter().filter(|(n, _)| !n.ends_with("num_batches_tracked")).collect();
        let mut ours: Vec<(String, Vec<usize>)> =
            layout.params.iter().map(|p| (p.path.clone(), p.shape.clone())).collect();
        ours.sort();
        assert_eq!(ours, written, "{name}");
        // The classifier is the last linear layer.
        let last = layout.params.last().expect("parameters").layer.clone();
        for p in &layout.params {
            assert_eq!(p.classifier, p.layer == last, "{name}: {}", p.path);
        }
    }
}

#[test]
fn the_labs_logits_equal_pytorchs() {
    let device = wsa_core::device::cpu().device;
    for name in MODELS {
        let (_, worst) = TorchFixture::load(name).logits_on(&device);
        eprintln!("{name}: the lab's logits differ from PyTorch's by up to {worst}");
        assert!(worst <= 1e-4, "{name}: the lab's logits differ from PyTorch's by up to {worst}");
    }
}

#[test]
fn a_model_the_lab_writes_loads_back_into_pytorch() {
    let dir = temp_dir("torch-round-trip");
    for name in MODELS {
        let params = load(name);
        let written = dir.join(format!("{name}.safetensors"));
        wsa_core::io::save_model(&written, &params).expect("save");
        // The names and shapes PyTorch's state_dict has (its BatchNorm counter aside, which
        // load_state_dict fills in when absent), so that load_state_dict(strict=True) takes it.
        let ours = names_and_shapes(&std::fs::read(&written).expect("written"));
        let theirs: Vec<(String, Vec<usize>)> = names_and_shapes(&std::fs::read(model_file(name)).expect("fixture"))
            .into_iter()
            .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
            .collect();
        assert_eq!(ours, theirs, "{name}");
        // The lab reads its own file back the same, by its metadata.
        assert_eq!(wsa_core::io::load_model(&written).expect("reads back"), params, "{name}");
        match std::env::var_os("TORCH_PYTHON") {
            Some(python) => {
                let status = std::process::Command::new(python)
                    .arg(fixture("make.py"))
                    .args(["check", name])
                    .arg(&written)
                    .status()
                    .expect("run TORCH_PYTHON");
                assert!(
                    status.success(),
                    "{name}: PyTorch did not load the lab's file into its class with the same logits"
                );
            }
            None => eprintln!("{name}: TORCH_PYTHON unset; checked names and shapes only"),
        }
    }
}

/// A safetensors file of float32 zeros with these tensors.
fn file_with(tensors: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let data: Vec<Vec<u8>> = tensors.iter().map(|(_, shape)| vec![0; 4 * shape.iter().product::<usize>()]).collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| {
            (name.to_string(), TensorView::new(Dtype::F32, shape.clone(), bytes).expect("view"))
        })
        .collect();
    safetensors::serialize(views, None).expect("serialise")
}

/// The error of inferring `bytes` named `file`, with `hints`; it must name the file.
fn refusal(bytes: &[u8], hints: Option<&LayoutHints>, file: &Path) -> String {
    let error = infer::infer_layout(bytes, hints, file).expect_err("refused");
    let text = error.to_string();
    eprintln!("{text}");
    assert!(text.contains(&file.display().to_string()), "names the file: {text}");
    assert!(!text.contains('\n'), "one sentence: {text}");
    text
}

#[test]
fn unreadable_models_are_refused_with_the_fix() {
    let cnn = std::fs::read(model_file("batchnorm_cnn")).expect("fixture");
    let file = Path::new("/models/net.safetensors");
    // A CNN without its input size: the sizes that fit are listed.
    let text = refusal(&cnn, None, file);
    assert!(text.contains("`conv1.weight`") && text.contains("\"input_shape\": [1, 8, 8]"), "{text}");
    assert!(
        text.contains(r#""input_shape": [1, 12, 12] with "after": {"conv2": [{"type": "max-pool2d", "kernel": 2}]}"#),
        "the MNIST example's pooling among the candidates: {text}"
    );
    assert!(text.contains("/models/net.layout.json"), "names the layout file: {text}");
    // A conv followed by a linear layer whose inputs are not channels x height x width for the
    // listed input shape (the pooling left out): the tensor, and the input shapes that fit.
    let no_pool = LayoutHints { input_shape: Some(vec![1, 12, 12]), ..LayoutHints::default() };
    let text = refusal(&cnn, Some(&no_pool), file);
    assert!(text.contains("`fc1.weight`") && text.contains("[16, 128]") && text.contains("[16, 512]"), "{text}");
    assert!(text.contains("\"input_shape\": [1, 8, 8];"), "lists the input shape that fits without pooling: {text}");
    assert!(text.contains(r#"[1, 12, 12] with "after": {"conv2""#), "and the pooling that fits this one: {text}");
    // A 3-D weight.
    let text = refusal(&file_with(&[("conv.weight", vec![4, 1, 3]), ("fc.weight", vec![2, 4])]), None, file);
    assert!(text.contains("`conv.weight` is 3-D"), "{text}");
    // Two layers that do not chain in any order.
    let text = refusal(&file_with(&[("a.weight", vec![8, 5]), ("b.weight", vec![3, 7])]), None, file);
    assert!(text.contains("`b.weight` takes 7 inputs but `a`") && text.contains("\"layers\""), "{text}");
    // Layers that chain in two orders, neither the names' (the candidates listed).
    let text = refusal(
        &file_with(&[("a.weight", vec![8, 4]), ("b.weight", vec![4, 8]), ("c.weight", vec![4, 8])]),
        None,
        file,
    );
    assert!(text.contains("chain in 2 orders (b -> a -> c; c -> a -> b)") && text.contains("\"layers\""), "{text}");
    // A norm without running statistics: LayerNorm or GroupNorm, the groups listed.
    let gn = std::fs::read(model_file("groupnorm_cnn")).expect("fixture");
    let hints = LayoutHints { input_shape: Some(vec![3, 16, 16]), ..LayoutHints::default() };
    let text = refusal(&gn, Some(&hints), file);
    assert!(
        text.contains("`features.1.weight`") && text.contains("\"groups\": G") && text.contains("1, 2, 4, 8"),
        "{text}"
    );
    // A layout file naming a module the file lacks (a typo).
    let typo = LayoutHints {
        input_shape: Some(vec![1, 12, 12]),
        after: [("conv3".to_string(), vec![LayerSpec::MaxPool2d { kernel: 2, stride: None }])].into(),
        ..LayoutHints::default()
    };
    assert!(refusal(&cnn, Some(&typo), file).contains(r#""after" in /models/net.layout.json names `conv3`"#));
    // ... or a module of another kind.
    let wrong_kind = LayoutHints {
        input_shape: Some(vec![1, 12, 12]),
        conv: [("fc1".to_string(), Default::default())].into(),
        ..LayoutHints::default()
    };
    assert!(refusal(&cnn, Some(&wrong_kind), file).contains("names `fc1`, which is not a conv layer"));
    // A pickle (PyTorch's .pt) is refused, saying how to convert it.
    let pickle = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.";
    let error = infer::infer_layout(pickle, None, file).expect_err("a pickle");
    assert!(matches!(error, WsaError::CorruptModel { .. }), "{error}");
    assert!(error.to_string().contains("/models/net.safetensors"), "{error}");
    assert!(error.to_string().contains("PyTorch pickle") && error.to_string().contains("st.save_file"), "{error}");
}

#[test]
fn a_layout_file_beside_the_model_is_read_and_can_list_the_layers() {
    let dir = temp_dir("torch-layout-file");
    let model = dir.join("mnist.safetensors");
    std::fs::copy(model_file("batchnorm_cnn"), &model).expect("copy");
    // Without its layout file the CNN cannot be read; with the fixture's, it is.
    assert!(matches!(infer::load_inferred(&model), Err(WsaError::UninferableLayout { .. })));
    std::fs::copy(fixture("batchnorm_cnn.layout.json"), infer::layout_file_for(&model)).expect("copy");
    let inferred = infer::load_inferred(&model).expect("with its layout file");
    // The same layers listed outright.
    let ModelConfig::Stack { layers, .. } = &inferred.params.layout.config else { panic!("a stack") };
    let listed =
        LayoutHints { input_shape: Some(vec![1, 12, 12]), layers: Some(layers.clone()), ..LayoutHints::default() };
    std::fs::write(infer::layout_file_for(&model), serde_json::to_string_pretty(&listed).expect("json"))
        .expect("write");
    assert_eq!(infer::load_inferred(&model).expect("listed layers").params, inferred.params);
    // A layout file of a newer version is refused, naming it.
    std::fs::write(infer::layout_file_for(&model), r#"{"version": 2}"#).expect("write");
    let error = infer::load_inferred(&model).expect_err("version 2").to_string();
    assert!(error.contains("mnist.layout.json") && error.contains("version"), "{error}");
    // A model the lab saved carries its layout: a layout file beside it, even a broken one,
    // is not read.
    let saved = dir.join("saved.safetensors");
    wsa_core::io::save_model(&saved, &inferred.params).expect("save");
    std::fs::write(infer::layout_file_for(&saved), r#"{"version": 2}"#).expect("write");
    let loaded = infer::load_user_model(&saved).expect("the lab's model, its layout from its metadata");
    assert_eq!(loaded.params, inferred.params);
}

/// BatchNorm's running statistics are buffers: training (in inference mode) leaves them as
/// PyTorch wrote them while it moves the weights, and no scope ever selects them.
#[test]
fn training_leaves_batchnorm_statistics_and_scopes_leave_them_out() {
    use wsa_core::model::ParamRole;
    use wsa_core::train::{DeviceData, TrainConfig, Trainer};
    let params = load("batchnorm_cnn");
    let device = wsa_core::device::cpu().device;
    let mut rng = wsa_core::rng::Rng::new(3);
    let samples = 64;
    let dataset = wsa_core::data::Dataset {
        features: (0..samples * 144).map(|_| rng.normal() as f32).collect(),
        labels: (0..samples).map(|i| (i % 10) as u32).collect(),
        sample_shape: vec![1, 12, 12],
        num_classes: 10,
    };
    let data = DeviceData::upload(&dataset, &device);
    let config = TrainConfig { batch_size: 16, epochs: 1, ..TrainConfig::default() };
    let mut trainer = Trainer::new("bn", config, &params, samples, &device, 0).expect("trainer");
    for _ in 0..4 {
        trainer.train_step(&data, None);
    }
    let trained = wsa_core::wait(trainer.params.to_host()).expect("trained");
    for (spec, (before, after)) in params.layout.params.iter().zip(params.values.iter().zip(&trained.values)) {
        match spec.role {
            ParamRole::RunningMean | ParamRole::RunningVar => assert_eq!(before, after, "{} is a buffer", spec.path),
            ParamRole::Weight => assert_ne!(before, after, "{} is trained", spec.path),
            _ => {}
        }
    }
    let everything =
        wsa_core::scope::LayerSelection { include_biases: true, include_norm: true, exclude_classifier: false };
    let selected = everything.select(&params.layout);
    assert!(
        selected
            .iter()
            .all(|&i| !matches!(params.layout.params[i].role, ParamRole::RunningMean | ParamRole::RunningVar))
    );
    assert_eq!(selected.len(), params.layout.params.len() - 2, "all but the two statistics");
}

/// The whole experiment on a stack like the BatchNorm CNN (on the digits, 1 x 8 x 8): trained
/// plain and with WSA, aligned by weight matching, repaired and rescaled, its config read back
/// from its JSON.
#[test]
fn the_experiment_runs_on_a_stack_with_batchnorm() {
    use wsa_core::experiment::Versioned;
    use wsa_core::experiment::connect::{self, ConnectConfig};
    use wsa_core::experiment::method::Method;
    let mut config = wsa_lab_tests::small_connect_config(2);
    config.model = ModelConfig::Stack {
        layers: vec![
            conv("conv1", 4, 1, 1),
            LayerSpec::BatchNorm { name: "bn1".into() },
            relu(),
            LayerSpec::MaxPool2d { kernel: 2, stride: None },
            conv("conv2", 8, 1, 1),
            relu(),
            LayerSpec::Flatten,
            linear("fc1", 16),
            relu(),
            linear("fc2", 10),
        ],
        init: Default::default(),
    };
    config.methods = ["plain", "wsa", "wm+wsa+repair", "rescale"]
        .into_iter()
        .map(|name| Method::from_name(name).expect("a method"))
        .collect();
    let json = serde_json::to_string(&config).expect("json");
    assert!(json.contains(r#""kind":"stack""#) && json.contains(r#""type":"batch-norm""#), "{json}");
    assert_eq!(ConnectConfig::from_json(&json).expect("reads back"), config);
    let outcome = wsa_core::wait(connect::run(&config, &wsa_core::device::cpu(), &mut wsa_core::cancel::Silent))
        .expect("connect runs on a stack");
    assert_eq!(outcome.result.methods.len(), 4);
    for method in &outcome.result.methods {
        let losses =
            [method.endpoint_a.loss, method.endpoint_b.loss].into_iter().chain(method.path.iter().map(|p| p.loss));
        assert!(losses.into_iter().all(f64::is_finite), "{}: finite losses along the path", method.method);
    }
}

/// docs/layout-file.md's example: PyTorch's MNIST CNN (its shapes) with the documented layout
/// file infers the documented stack config, written as the docs show it.
#[test]
fn the_documented_mnist_example_infers_the_documented_stack() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    let bytes = file_with(&[
        ("conv1.weight", vec![32, 1, 3, 3]),
        ("conv1.bias", vec![32]),
        ("conv2.weight", vec![64, 32, 3, 3]),
        ("conv2.bias", vec![64]),
        ("fc1.weight", vec![128, 9216]),
        ("fc1.bias", vec![128]),
        ("fc2.weight", vec![10, 128]),
        ("fc2.bias", vec![10]),
    ]);
    let file = Path::new("net.safetensors");
    let text = refusal(&bytes, None, file);
    assert!(
        text.contains(r#""input_shape": [1, 28, 28] with "after": {"conv2": [{"type": "max-pool2d", "kernel": 2}]}"#),
        "{text}"
    );
    use wsa_core::experiment::Versioned;
    let hints = LayoutHints::read_file(&docs.join("pytorch_mnist_cnn.layout.json")).expect("the docs' layout file");
    let layout = infer::infer_layout(&bytes, Some(&hints), file).expect("inferred");
    assert_eq!(layout.sample_shape, [1, 28, 28]);
    let documented = std::fs::read_to_string(docs.join("pytorch_mnist_cnn.stack.json")).expect("the docs' stack");
    let documented: serde_json::Value = serde_json::from_str(&documented).expect("json");
    assert_eq!(serde_json::to_value(&layout.config).expect("json"), documented);
}

/// Issue 30: a merged BatchNorm model's running statistics are re-estimated, not interpolated.
/// The fixture's BatchNorm follows its first conv, so what it sees is conv1's output, computed
/// here on the host over the reset's samples. Statistics that are already those exact ones are
/// left nearly unchanged by a reset, and a merged model's reset statistics are its own conv's,
/// far from the interpolation of A's and B's.
#[test]
fn a_reset_re_estimates_merged_batchnorm_statistics_and_keeps_exact_ones() {
    use wsa_core::batch_norm::{ResetData, reset_host};
    let a = load("batchnorm_cnn");
    let b = a.layout.init(&mut wsa_core::rng::Rng::new(5));
    let device = wsa_core::device::cpu().device;
    let mut rng = wsa_core::rng::Rng::new(11);
    let samples = 640;
    let dataset = wsa_core::data::Dataset {
        features: (0..samples * 144).map(|_| rng.normal() as f32).collect(),
        labels: (0..samples).map(|i| (i % 10) as u32).collect(),
        sample_shape: vec![1, 12, 12],
        num_classes: 10,
    };
    // 20 batches of 32: every sample.
    let data = ResetData::new(&a.layout, &dataset, 20, 32, 0, &device).expect("the fixture has BatchNorm");
    assert_eq!(data.len(), samples);
    // conv1 (3x3, no padding, 12 -> 10) over every sample: each channel's mean and unbiased variance.
    let exact = |p: &HostParams| {
        let (w, bias) = (p.get("conv1.weight").expect("conv1"), p.get("conv1.bias").expect("bias"));
        (0..4)
            .map(|c| {
                let values: Vec<f64> = dataset
                    .features
                    .chunks(144)
                    .flat_map(|image| {
                        (0..100).map(move |q| {
                            let (y, x) = (q / 10, q % 10);
                            let taps = (0..9)
                                .map(|k| f64::from(w[c * 9 + k]) * f64::from(image[(y + k / 3) * 12 + x + k % 3]));
                            f64::from(bias[c]) + taps.sum::<f64>()
                        })
                    })
                    .collect();
                let n = values.len() as f64;
                let mean = values.iter().sum::<f64>() / n;
                (mean, values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0))
            })
            .collect::<Vec<(f64, f64)>>()
    };
    let stats = |p: &HostParams| {
        let (mean, var) = (p.get("bn1.running_mean").expect("mean"), p.get("bn1.running_var").expect("var"));
        mean.iter().zip(var).map(|(m, v)| (f64::from(*m), f64::from(*v))).collect::<Vec<(f64, f64)>>()
    };
    // The batch average of the means is the mean over all samples; of the unbiased variances, the
    // variance over all samples up to the spread of the batch means (a fraction of a percent here).
    let close = |reset: &[(f64, f64)], want: &[(f64, f64)], what: &str| {
        for (c, ((m, v), (wm, wv))) in reset.iter().zip(want).enumerate() {
            assert!((m - wm).abs() <= 1e-4 * wv.sqrt().max(1.0), "{what} channel {c}: mean {m} vs {wm}");
            assert!((v / wv - 1.0).abs() <= 0.02, "{what} channel {c}: variance {v} vs {wv}");
        }
    };

    let mut exact_a = a.clone();
    let want = exact(&a);
    let slot = |path: &str| a.layout.index_of(path).expect(path);
    exact_a.values[slot("bn1.running_mean")] = want.iter().map(|(m, _)| *m as f32).collect();
    exact_a.values[slot("bn1.running_var")] = want.iter().map(|(_, v)| *v as f32).collect();
    let again = wsa_core::wait(reset_host(&exact_a, &data)).expect("reset");
    close(&stats(&again), &want, "exact statistics reset");
    for (spec, (x, y)) in a.layout.params.iter().zip(again.values.iter().zip(&exact_a.values)) {
        if !spec.path.starts_with("bn1.running") {
            assert_eq!(x, y, "{} is not a statistic", spec.path);
        }
    }

    let merged = a.interpolate(&b, 0.5).expect("merged");
    let reset = wsa_core::wait(reset_host(&merged, &data)).expect("reset");
    close(&stats(&reset), &exact(&merged), "merged");
    let interpolated = stats(&merged);
    let off = stats(&reset)
        .iter()
        .zip(&interpolated)
        .map(|((m, v), (im, iv))| ((m - im).abs() / v.sqrt()).max((v / iv).ln().abs()))
        .fold(0.0, f64::max);
    assert!(off > 0.5, "the interpolated statistics are stale: {interpolated:?} vs reset {:?}", stats(&reset));
}
