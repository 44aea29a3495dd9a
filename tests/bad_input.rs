//! Bad input gets a typed error naming the problem, never a panic, and never a half-written file:
//! model files, configs, and the user's data files.

use std::path::PathBuf;
use std::sync::Arc;
use wsa_core::WsaError;
use wsa_core::cancel::Silent;
use wsa_core::data::{DataConfig, DatasetSpec};
use wsa_core::device;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::{self, ConnectConfig, PairDifference};
use wsa_core::experiment::method::Method;
use wsa_core::io::{load_model, params_from_safetensors, save_model, to_safetensors, write_atomic};
use wsa_core::merge::{interpolate, weighted_average};
use wsa_core::model::{Activation, HostParams, ModelConfig, ModelLayout, Norm};
use wsa_core::rng::Rng;
use wsa_lab_tests::{f32_le_bytes, npy_file, small_connect_config, temp_dir};

fn mlp(hidden: Vec<usize>) -> Arc<ModelLayout> {
    let config = ModelConfig::mlp(hidden);
    Arc::new(ModelLayout::new(&config, &[1, 8, 8], 10).expect("layout"))
}

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn models_round_trip_and_corrupt_or_truncated_files_are_refused() {
    let dir = temp_dir("safetensors");
    let params = mlp(vec![16]).init(&mut Rng::new(0));
    let path = dir.join("model.safetensors");
    save_model(&path, &params).expect("save");
    assert_eq!(load_model(&path).expect("load"), params);

    let bytes = std::fs::read(&path).expect("read");
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).expect("write");
    let err = load_model(&truncated).expect_err("truncated");
    assert!(matches!(err, WsaError::CorruptModel { .. }), "{err}");

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a model").expect("write");
    let err = load_model(&garbage).expect_err("garbage");
    assert!(matches!(err, WsaError::CorruptModel { .. }) && err.to_string().contains("garbage.safetensors"), "{err}");

    let missing = load_model(&dir.join("nope.safetensors")).expect_err("missing");
    assert!(matches!(missing, WsaError::Io { .. }), "{missing}");
}

#[test]
fn mismatched_architectures_name_the_first_differing_parameter() {
    let small = mlp(vec![16]).init(&mut Rng::new(0));
    let wide = mlp(vec![32]).init(&mut Rng::new(0));
    let deep = mlp(vec![16, 16]).init(&mut Rng::new(0));
    let err = params_from_safetensors(
        &to_safetensors(&wide).expect("bytes"),
        &small.layout,
        &PathBuf::from("wide.safetensors"),
    )
    .expect_err("shapes differ");
    assert!(matches!(&err, WsaError::ArchitectureMismatch { path, .. } if path == "hidden.0.weight"), "{err}");

    let cpu = device::cpu();
    let (a, b) = (small.to_device(&cpu.device), deep.to_device(&cpu.device));
    let err = interpolate(&a, &b, 0.5).expect_err("layouts differ");
    assert!(matches!(&err, WsaError::ArchitectureMismatch { path, .. } if path == "classifier.weight"), "{err}");
    let err = weighted_average(&[&a, &b], &[1.0, 1.0]).expect_err("layouts differ");
    assert!(err.to_string().contains("classifier.weight"), "{err}");
}

#[test]
fn nan_weights_are_refused_and_nothing_is_written() {
    let dir = temp_dir("nan");
    let mut params: HostParams = mlp(vec![8]).init(&mut Rng::new(0));
    params.values[2][3] = f32::NAN;
    let err = save_model(&dir.join("nan.safetensors"), &params).expect_err("NaN");
    assert!(matches!(&err, WsaError::NonFiniteWeights { path, count: 1 } if path == "classifier.weight"), "{err}");
    assert!(entries(&dir).is_empty(), "a file was left behind: {:?}", entries(&dir));

    // A NaN inside a file made elsewhere is refused on load.
    let path = dir.join("from-elsewhere.safetensors");
    std::fs::write(&path, to_safetensors(&params).expect("bytes")).expect("write");
    let err = load_model(&path).expect_err("NaN in file");
    assert!(
        matches!(&err, WsaError::InFile { source, .. } if matches!(**source, WsaError::NonFiniteWeights { .. }))
            && err.to_string().contains("from-elsewhere.safetensors"),
        "{err}"
    );
}

#[test]
fn atomic_writes_replace_whole_files_and_leave_no_temporaries() {
    let dir = temp_dir("atomic");
    let path = dir.join("summary.json");
    write_atomic(&path, b"first").expect("write");
    write_atomic(&path, b"second").expect("write");
    assert_eq!(std::fs::read(&path).expect("read"), b"second");
    assert_eq!(entries(&dir), vec!["summary.json".to_string()]);
    // Writing below a file (not a folder) fails cleanly and leaves the old file intact.
    let err = write_atomic(&path.join("child.json"), b"x").expect_err("parent is a file");
    assert!(matches!(err, WsaError::Io { .. }), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), b"second");
}

#[track_caller]
fn run_err(config: &ConnectConfig) -> WsaError {
    match wsa_core::wait(connect::run(config, &device::cpu(), &mut Silent)) {
        Ok(_) => panic!("the config should have been refused"),
        Err(e) => e,
    }
}

#[test]
fn absurd_configs_are_refused_with_the_field_named() {
    let base = small_connect_config(1);
    let mut c = base.clone();
    c.train.batch_size = 0;
    assert!(run_err(&c).to_string().contains("train.batch_size"));
    let mut c = base.clone();
    c.pair = PairDifference::Seed { same_init: false };
    c.train.learning_rate = -0.1;
    assert!(run_err(&c).to_string().contains("train.learning_rate"));
    c.train.learning_rate = f64::NAN;
    assert!(matches!(run_err(&c), WsaError::InvalidConfig { .. }));
    let mut c = base.clone();
    c.pair = PairDifference::LearningRate { a: 0.1, b: 0.0, different_init: false };
    assert!(run_err(&c).to_string().contains("train.learning_rate"));
    let mut c = base.clone();
    c.path.points = 0;
    assert!(run_err(&c).to_string().contains("path.points"));
    let mut c = base.clone();
    c.wsa.lambda = -1.0;
    assert!(run_err(&c).to_string().contains("wsa.lambda"));
    for seeds in [0, 1000] {
        let c = ConnectConfig { seeds, ..base.clone() };
        let message = run_err(&c).to_string();
        assert!(message.contains("seeds") && message.contains("between 1 and 100"), "{message}");
    }
    let c = ConnectConfig { seed: u64::MAX, seeds: 2, ..base.clone() };
    assert!(run_err(&c).to_string().contains("no room for the other seeds"));
    let mut c = base.clone();
    c.model = ModelConfig::Cnn {
        channels: vec![8],
        kernel_size: 3,
        activation: Activation::Relu,
        norm: Norm::GroupNorm { groups: 3 },
        init: Default::default(),
    };
    assert!(run_err(&c).to_string().contains("groups"));

    // A negative batch size in a file cannot even be parsed; the message says where.
    let text = serde_json::to_string(&base).expect("json").replace("\"batch_size\":64", "\"batch_size\":-1");
    let err = ConnectConfig::from_json(&text).expect_err("negative batch size");
    assert!(err.to_string().contains("batch_size"), "{err}");
    let err = ConnectConfig::from_json("{\"version\": 99}").expect_err("future version");
    assert!(err.to_string().contains("`version` = 99") && err.to_string().contains("reads versions"), "{err}");
}

#[test]
fn bad_method_lists_are_refused_with_the_names_to_choose_from() {
    let base = small_connect_config(1);
    let mut c = base.clone();
    c.methods.clear();
    let err = run_err(&c);
    assert!(matches!(err, WsaError::InvalidConfig { .. }) && err.to_string().contains("at least one method"), "{err}");
    c.methods = vec![Method::WSA, Method::WM, Method::WSA];
    let message = run_err(&c).to_string();
    assert!(message.contains("methods = `wsa`") && message.contains("listed twice"), "{message}");
    // In a file: an unknown name, with the field and the valid names.
    let text = serde_json::to_string(&base).expect("json").replace("\"wm+wsa\"", "\"wm+wsb\"");
    let err = ConnectConfig::from_json(&text).expect_err("unknown method");
    let message = err.to_string();
    assert!(message.contains("methods") && message.contains("`wm+wsb`") && message.contains("rescale"), "{message}");
    let mut c = base.clone();
    c.methods = vec![Method::WM];
    c.weight_matching.max_sweeps = 0;
    assert!(run_err(&c).to_string().contains("weight_matching.max_sweeps"));
}

#[test]
fn a_missing_dataset_names_the_fetch_command() {
    let mut c = small_connect_config(1);
    c.data = DataConfig {
        dataset: DatasetSpec::FashionMnist,
        data_dir: PathBuf::from("/nonexistent/wsa"),
        ..DataConfig::default()
    };
    let err = run_err(&c);
    assert!(matches!(err, WsaError::MissingDataset { .. }), "{err}");
    assert!(err.to_string().contains("scripts/fetch-data.sh"), "{err}");
}

/// A safetensors file from elsewhere (PyTorch's `safetensors.torch.save_file` writes
/// `{"format": "pt"}` metadata and the tensors by name) loads for a known architecture.
#[test]
fn a_pytorch_style_file_loads_by_parameter_path() {
    let layout = mlp(vec![16]);
    let params = layout.init(&mut Rng::new(5));
    let bytes: Vec<Vec<u8>> = params.values.iter().map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    // Written in reverse order, as another tool might: loading goes by name, not position.
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = layout
        .params
        .iter()
        .zip(&bytes)
        .rev()
        .map(|(spec, data)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, spec.shape.clone(), data).expect("view");
            (spec.path.clone(), view)
        })
        .collect();
    let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let dir = temp_dir("torch");
    let path = dir.join("model.safetensors");
    std::fs::write(&path, safetensors::serialize(views, Some(metadata)).expect("serialize")).expect("write");
    let loaded = wsa_core::io::load_model_for(&path, &layout).expect("loads");
    assert_eq!((loaded.params, loaded.report.notice()), (params, None));
    // Without a layout it cannot know the architecture, and says so.
    let err = load_model(&path).expect_err("no layout metadata");
    assert!(err.to_string().contains("model config"), "{err}");
}

/// float32 to IEEE half, rounding to nearest (what `torch.half()` stores), for the test files.
fn f32_to_f16(x: f32) -> u16 {
    let sign = if x.is_sign_negative() { 0x8000 } else { 0 };
    let a = x.abs();
    if a < 2f32.powi(-14) {
        return sign | (a / 2f32.powi(-24)).round() as u16;
    }
    let mut exponent = a.log2().floor() as i32;
    let mut mantissa = ((a / 2f32.powi(exponent) - 1.0) * 1024.0).round() as u16;
    if mantissa == 1024 {
        exponent += 1;
        mantissa = 0;
    }
    sign | (((exponent + 15) as u16) << 10) | mantissa
}

#[test]
fn half_precision_pytorch_files_load_converted_and_their_buffers_are_ignored_with_a_notice() {
    let params = mlp(vec![16]).init(&mut Rng::new(3));
    let layout = Arc::clone(&params.layout);
    let dir = temp_dir("half");
    // (type in the file, how a weight is stored, the relative error it allows)
    type Encoding = (safetensors::Dtype, fn(f32) -> u16, f32);
    let encodings: [Encoding; 2] = [
        (safetensors::Dtype::F16, f32_to_f16, 1e-3),
        // bfloat16 keeps float32's upper half (8 bits of mantissa).
        (safetensors::Dtype::BF16, |x| (x.to_bits() >> 16) as u16, 1e-2),
    ];
    for (dtype, encode, tolerance) in encodings {
        let bytes: Vec<Vec<u8>> =
            params.values.iter().map(|v| v.iter().flat_map(|&x| encode(x).to_le_bytes()).collect()).collect();
        // What a PyTorch state_dict adds: normalisation statistics and a step counter.
        let running = vec![0u8; 16 * 2];
        let counter = 7i64.to_le_bytes();
        let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = layout
            .params
            .iter()
            .zip(&bytes)
            .map(|(spec, data)| {
                (
                    spec.path.clone(),
                    safetensors::tensor::TensorView::new(dtype, spec.shape.clone(), data).expect("view"),
                )
            })
            .collect();
        views.push((
            "hidden.0.running_mean".into(),
            safetensors::tensor::TensorView::new(dtype, vec![16], &running).expect("view"),
        ));
        views.push((
            "hidden.0.num_batches_tracked".into(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![], &counter).expect("view"),
        ));
        let file = safetensors::serialize(views.clone(), None).expect("serialize");
        let path = dir.join(format!("{dtype:?}.safetensors"));
        std::fs::write(&path, &file).expect("write");
        let loaded = wsa_core::io::load_model_for(&path, &layout).expect("a half-precision file loads");
        for (spec, (got, want)) in layout.params.iter().zip(loaded.params.values.iter().zip(&params.values)) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() <= tolerance * w.abs() + 1e-7, "{dtype:?} {}: {g} vs {w}", spec.path);
            }
        }
        let notice = loaded.report.notice().expect("a notice");
        assert!(notice.contains(&format!("converted from {dtype:?} to float32")), "{notice}");
        assert!(notice.contains("hidden.0.num_batches_tracked, hidden.0.running_mean"), "{notice}");

        // The weights of a layer the model does not have are a different architecture.
        let extra = vec![0u8; 4 * 2];
        views.push((
            "hidden.7.weight".into(),
            safetensors::tensor::TensorView::new(dtype, vec![2, 2], &extra).expect("view"),
        ));
        let file = safetensors::serialize(views, None).expect("serialize");
        let err =
            params_from_safetensors(&file, &layout, &PathBuf::from("deeper.safetensors")).expect_err("an extra layer");
        assert!(matches!(&err, WsaError::ArchitectureMismatch { path, .. } if path == "hidden.7.weight"), "{err}");
    }
}

/// PNG bytes of a `width` x `height` grayscale image.
fn gray_png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(&vec![128; (width * height) as usize]).expect("png data");
    writer.finish().expect("png end");
    out
}

/// Every malformed data file of issue 30's checks is refused with one sentence naming the file
/// and the problem: no panic, and nothing written beside the files.
#[test]
fn malformed_data_files_are_refused_naming_the_file_and_the_problem() {
    use wsa_core::data::files::{ArrayPair, CifarLabels, FileDataset, FileFormat, Header, IdxPair, LabelColumn};
    let dir = temp_dir("data-files");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let csv = |name: &str, text: &str| FileFormat::Csv {
        train: write(name, text.as_bytes()),
        test: None,
        label_column: None,
        header: Header::Auto,
    };
    let pair = |x: &str, y: &str| ArrayPair { features: dir.join(x), labels: dir.join(y) };
    write("x4.npy", &npy_file("<f4", &[4, 1], &f32_le_bytes(&[1.0, 2.0, 3.0, 4.0])));
    write("y3.npy", &npy_file("|u1", &[3], &[0, 1, 0]));
    write("y4.npy", &npy_file("|u1", &[4], &[0, 1, 0, 1]));
    write("y4-one.npy", &npy_file("|u1", &[4], &[2, 2, 2, 2]));
    write("x4-nan.npy", &npy_file("<f4", &[4, 1], &f32_le_bytes(&[1.0, f32::NAN, 3.0, 4.0])));
    write("mixed/a/small.png", &gray_png(4, 4));
    write("mixed/b/large.png", &gray_png(5, 4));
    write("empty-class/a/one.png", &gray_png(4, 4));
    std::fs::create_dir_all(dir.join("empty-class/b")).expect("mkdir");
    let idx = |dims: &[u32], data: &[u8]| {
        let mut v = vec![0, 0, 0x08, dims.len() as u8];
        v.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
        v.extend(data);
        v
    };
    write("images-idx3", &idx(&[3, 1, 2], &[1, 2, 3, 4, 5, 6]));
    write("labels-idx1", &idx(&[2], &[0, 1]));

    let cases: Vec<(FileFormat, &str, &str)> = vec![
        (csv("ragged.csv", "1,2,0\n3,4,1\n5,1\n"), "ragged.csv", "line 3 has 2 cells where line 1 has 3"),
        (csv("text.csv", "a,b,c\n1,2,0\n3,four,1\n"), "text.csv", "line 3, column `b`: `four` is not a number"),
        (
            FileFormat::Csv {
                train: write("nolabel.csv", b"a,b\n1,2\n"),
                test: None,
                label_column: Some(LabelColumn::Name("label".into())),
                header: Header::Auto,
            },
            "nolabel.csv",
            "no column named `label`",
        ),
        (
            csv("nan.csv", "1,2,0\n3,NaN,1\n"),
            "nan.csv",
            "line 2, column 1 (counted from 0): `NaN` is not a finite number",
        ),
        (csv("one.csv", "1,2,cat\n3,4,cat\n"), "one.csv", "every sample is of class cat"),
        (csv("empty.csv", ""), "empty.csv", "is empty"),
        (FileFormat::Npy { train: pair("x4.npy", "y3.npy"), test: None }, "y3.npy", "holds 3 labels for the 4 samples"),
        (FileFormat::Npy { train: pair("x4-nan.npy", "y4.npy"), test: None }, "x4-nan.npy", "sample 1 holds NaN"),
        (FileFormat::Npy { train: pair("x4.npy", "y4-one.npy"), test: None }, "x4.npy", "every sample is of class 2"),
        (
            FileFormat::Idx {
                train: IdxPair { images: dir.join("images-idx3"), labels: dir.join("labels-idx1") },
                test: None,
            },
            "labels-idx1",
            "holds 2 labels for the 3 images",
        ),
        (
            FileFormat::Cifar {
                train: vec![write("data_batch_1.bin", &[3u8; 3073 + 100])],
                test: None,
                labels: CifarLabels::Cifar10,
            },
            "data_batch_1.bin",
            "not a whole number of 3073-byte CIFAR-10 records",
        ),
        (
            FileFormat::ImageFolder { train: dir.join("mixed"), test: None },
            "large.png",
            "is 1x4x5 (channels x height x width) but",
        ),
        (
            FileFormat::ImageFolder { train: dir.join("empty-class"), test: None },
            "empty-class/b",
            "holds no PNG or JPEG images",
        ),
        (
            FileFormat::Npz { train: write("not.npz", b"PK but not really"), test: None, features: None, labels: None },
            "not.npz",
            "is not a .npz (ZIP) archive",
        ),
    ];
    let before = entries(&dir);
    for (format, file, problem) in cases {
        let data = DataConfig {
            dataset: DatasetSpec::File(FileDataset { format, normalisation: Default::default() }),
            ..DataConfig::default()
        };
        let err = wsa_core::data::load(&data, 0).expect_err(problem);
        let message = err.to_string();
        assert!(matches!(err, WsaError::BadDataFile { .. }), "{message}");
        assert!(message.starts_with("data file ") && message.contains(file) && message.contains(problem), "{message}");
        assert!(!message.trim_end_matches('.').contains(". "), "one sentence: {message}");
    }
    // The mixed sizes name both files and both sizes.
    let mixed = DataConfig {
        dataset: DatasetSpec::File(FileDataset {
            format: FileFormat::ImageFolder { train: dir.join("mixed"), test: None },
            normalisation: Default::default(),
        }),
        ..DataConfig::default()
    };
    let message = wsa_core::data::load(&mixed, 0).expect_err("mixed sizes").to_string();
    assert!(message.contains("small.png is 1x4x4") && message.contains("large.png"), "{message}");
    // Through an experiment: the same error, before any training.
    let mut c = small_connect_config(1);
    c.data = mixed;
    assert!(matches!(run_err(&c), WsaError::BadDataFile { .. }));
    assert_eq!(entries(&dir), before, "nothing written");
}
