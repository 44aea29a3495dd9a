//! The loaders fuzzed: every reader of outside bytes (model files, PyTorch models read by their
//! names and shapes and their layout files, checkpoints of any architecture, IDX data files, the
//! user's data files, experiment configs, the page's link, the app's saved settings) is fed
//! mutated real inputs and random
//! bytes, `CASES` each. None may panic; every error says what is wrong, naming the file where
//! there is one. Deterministic (our seeded generator), so a failure names a case that repeats.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::{ConnectConfig, ConnectResult};
use wsa_core::experiment::federated::FedConfig;
use wsa_core::rng::Rng;

/// Cases per loader.
const CASES: usize = 10_000;

/// Values that break length and count fields: zero, one, the signed and unsigned limits.
const INTERESTING: [u64; 8] = [0, 1, 0x7f, 0xff, 0x7fff_ffff, 0xffff_ffff, 0x7fff_ffff_ffff_ffff, u64::MAX];

/// `seed` changed in 1 to 8 places: bit flips, bytes set to edge values, a cut, an insertion,
/// a deletion, an edge integer written over 4 or 8 bytes (where lengths live).
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(bytes.len().max(1));
        match rng.below(6) {
            0 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
            1 if !bytes.is_empty() => bytes[at] = [0, 0xff, 0x7f, 0x80, b'"', b'{', b'-', b'9'][rng.below(8)],
            2 => bytes.truncate(at),
            3 => {
                let insert: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.below(256) as u8).collect();
                bytes.splice(at.min(bytes.len())..at.min(bytes.len()), insert);
            }
            4 => {
                let end = (at + 1 + rng.below(32)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            _ => {
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let width = if rng.below(2) == 0 { 4 } else { 8 };
                let encoded = if rng.below(2) == 0 { value.to_le_bytes() } else { value.to_be_bytes() };
                for (k, b) in encoded[..width].iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
        }
    }
    bytes
}

/// Case `i` of a loader: mostly a mutated seed input, every fifth random bytes.
fn case(rng: &mut Rng, i: usize, seeds: &[Vec<u8>]) -> Vec<u8> {
    if i % 5 == 4 {
        (0..rng.below(512)).map(|_| rng.below(256) as u8).collect()
    } else {
        mutate(rng, &seeds[i % seeds.len()])
    }
}

/// Runs `load` on `CASES` cases; a panic fails with the case that caused it, and every error
/// message must pass `check`. Returns how many cases were refused.
fn fuzz(
    name: &str,
    seeds: &[Vec<u8>],
    mut load: impl FnMut(&[u8]) -> Option<String>,
    check: impl Fn(&str) -> bool,
) -> usize {
    let mut rng = Rng::derive(2026, name);
    let mut refused = 0;
    for i in 0..CASES {
        let input = case(&mut rng, i, seeds);
        let outcome = catch_unwind(AssertUnwindSafe(|| load(&input))).unwrap_or_else(|_| {
            panic!("{name}: case {i} panicked on {} bytes: {:?}", input.len(), &input[..input.len().min(64)])
        });
        if let Some(message) = outcome {
            refused += 1;
            assert!(check(&message), "{name}: case {i}: the error does not say where or what: {message}");
        }
    }
    eprintln!("{name}: {CASES} cases, {refused} refused");
    refused
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn model_files() {
    let origin = Path::new("fuzzed.safetensors");
    let params = Arc::new(
        wsa_core::model::ModelLayout::new(&wsa_core::model::ModelConfig::mlp(vec![8]), &[12], 3).expect("layout"),
    )
    .init(&mut Rng::new(1));
    let layout = Arc::clone(&params.layout);
    let seeds = vec![wsa_core::io::model_bytes(&params).expect("a model file")];
    let refused = fuzz(
        "model files",
        &seeds,
        |bytes| wsa_core::io::params_from_safetensors(bytes, &layout, origin).err().map(|e| e.to_string()),
        |message| message.contains("fuzzed.safetensors"),
    );
    assert!(refused > CASES / 2, "most damaged files must be refused ({refused})");
    // The same bytes through the loader that reads the layout from the file.
    let dir = wsa_lab_tests::temp_dir("fuzz-models");
    let path = dir.join("fuzzed.safetensors");
    fuzz(
        "model files with their layout",
        &seeds,
        |bytes| {
            std::fs::write(&path, bytes).expect("write");
            wsa_core::io::load_model(&path).err().map(|e| e.to_string())
        },
        |message| message.contains("fuzzed.safetensors"),
    );
}

/// PyTorch models whose layout is inferred from their names and shapes (the fixtures PyTorch
/// wrote, mutated), and their layout files.
#[test]
fn pytorch_models_and_layout_files() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/torch");
    let read = |name: &str| std::fs::read(fixtures.join(name)).expect("fixture");
    let hints: Vec<wsa_core::infer::LayoutHints> = ["batchnorm_cnn", "groupnorm_cnn"]
        .iter()
        .map(|name| {
            wsa_core::infer::LayoutHints::read_file(&fixtures.join(format!("{name}.layout.json"))).expect("hints")
        })
        .collect();
    let models =
        [read("sequential_mlp.safetensors"), read("batchnorm_cnn.safetensors"), read("groupnorm_cnn.safetensors")];
    let origin = Path::new("fuzzed.safetensors");
    let mut which = 0;
    fuzz(
        "pytorch models",
        &models,
        |bytes| {
            // Case i mutates fixture i % 3: read with its own layout file (the MLP needs none).
            let hints = [None, Some(&hints[0]), Some(&hints[1])][which % 3];
            which += 1;
            match wsa_core::infer::infer_layout(bytes, hints, origin) {
                Ok(layout) => wsa_core::io::params_from_safetensors(bytes, &Arc::new(layout), origin).err(),
                Err(e) => Some(e),
            }
            .map(|e| e.to_string())
        },
        |message| message.contains("fuzzed.safetensors"),
    );
    let dir = wsa_lab_tests::temp_dir("fuzz-layout-files");
    let model = dir.join("fuzzed.safetensors");
    std::fs::write(&model, &models[2]).expect("write");
    let seeds = [read("batchnorm_cnn.layout.json"), read("groupnorm_cnn.layout.json")];
    fuzz(
        "layout files",
        &seeds,
        |bytes| {
            std::fs::write(wsa_core::infer::layout_file_for(&model), bytes).expect("write");
            wsa_core::infer::load_inferred(&model).err().map(|e| e.to_string())
        },
        |message| message.contains("fuzzed.layout.json") || message.contains("fuzzed.safetensors"),
    );
}

#[test]
fn checkpoints_of_any_architecture() {
    use std::io::Cursor;
    use wsa_core::checkpoint::{self, MergeOptions, StoredType};
    // A real model file (float32, with the lab's metadata) and a float16 + int64 one.
    let params = Arc::new(
        wsa_core::model::ModelLayout::new(&wsa_core::model::ModelConfig::mlp(vec![8]), &[12], 3).expect("layout"),
    )
    .init(&mut Rng::new(2));
    let mut halves = Vec::new();
    StoredType::F16.encode(&params.values[0], &mut halves);
    let header = format!(
        r#"{{"w":{{"dtype":"F16","shape":[8,12],"data_offsets":[0,{n}]}},"steps":{{"dtype":"I64","shape":[],"data_offsets":[{n},{m}]}}}}"#,
        n = halves.len(),
        m = halves.len() + 8
    );
    let mut half_file = (header.len() as u64).to_le_bytes().to_vec();
    half_file.extend_from_slice(header.as_bytes());
    half_file.extend_from_slice(&halves);
    half_file.extend_from_slice(&7i64.to_le_bytes());
    let seeds = vec![wsa_core::io::model_bytes(&params).expect("a model file"), half_file];
    let origin = Path::new("fuzzed.safetensors");
    let files = [origin, origin];
    let options = MergeOptions { alpha: 0.5, rescale: true, fusion: Default::default() };
    let refused = fuzz(
        "checkpoints",
        &seeds,
        |bytes| {
            let compared = checkpoint::compare(files, [&mut Cursor::new(bytes), &mut Cursor::new(bytes)], 16);
            let merged =
                checkpoint::merge(files, [&mut Cursor::new(bytes), &mut Cursor::new(bytes)], options, &mut Vec::new());
            assert_eq!(compared.is_ok(), merged.is_ok(), "reading and merging agree on whether the file is whole");
            compared.err().map(|e| e.to_string())
        },
        |message| message.contains("fuzzed.safetensors"),
    );
    assert!(refused > CASES / 2, "most damaged files must be refused ({refused})");
}

#[test]
fn idx_data_files() {
    // Real IDX: the embedded Fashion-MNIST labels, and its first 20 images, raw and gzipped.
    let read = |name: &str| {
        let raw = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/fashion-mnist-small").join(name))
            .expect("embedded subset");
        wsa_core::data::parse_idx_file(&raw, Path::new(name)).expect("the real file reads")
    };
    let encode = |array: &wsa_core::data::IdxArray, count: usize| {
        let mut bytes = vec![0, 0, 0x08, array.dims.len() as u8];
        let mut dims = array.dims.clone();
        dims[0] = count;
        for d in &dims {
            bytes.extend((*d as u32).to_be_bytes());
        }
        let per_item: usize = dims[1..].iter().product();
        bytes.extend(array.data[..count * per_item].iter().map(|&v| v as u8));
        bytes
    };
    let (labels, images) = (read("labels-idx1-ubyte.gz"), read("images-idx3-ubyte.gz"));
    let raw = [encode(&labels, 200), encode(&images, 20)];
    let gzipped: Vec<Vec<u8>> = raw
        .iter()
        .map(|bytes| {
            use std::io::Write as _;
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).expect("gzip");
            encoder.finish().expect("gzip")
        })
        .collect();
    let seeds: Vec<Vec<u8>> = raw.into_iter().chain(gzipped).collect();
    let refused = fuzz(
        "IDX files",
        &seeds,
        |bytes| wsa_core::data::parse_idx_file(bytes, Path::new("fuzzed-idx3-ubyte")).err().map(|e| e.to_string()),
        |message| message.contains("fuzzed-idx3-ubyte") && message.contains("fetch-data.sh"),
    );
    assert!(refused > CASES / 2, "most damaged files must be refused ({refused})");
}

#[test]
fn experiment_configs_and_results() {
    let connect = serde_json::to_vec_pretty(&ConnectConfig::default()).expect("json");
    let fed = serde_json::to_vec_pretty(&FedConfig::default()).expect("json");
    let v1 = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/config.json")).expect("fixture");
    let dir = wsa_lab_tests::temp_dir("fuzz-configs");
    let path = dir.join("fuzzed-config.json");
    // A config that reads is also checked: an absurd value is refused, never a panic.
    fn load<C: Versioned>(path: &Path, bytes: &[u8], check: fn(&C) -> wsa_core::Result<()>) -> Option<String> {
        std::fs::write(path, bytes).expect("write");
        match C::read_file(path) {
            Ok(config) => check(&config).err().map(|e| format!("{}: {e}", path.display())),
            Err(e) => Some(e.to_string()),
        }
    }
    let named = |message: &str| message.contains("fuzzed-config.json");
    fuzz("connect configs", &[connect, v1], |bytes| load(&path, bytes, ConnectConfig::validate), named);
    fuzz("federated configs", &[fed], |bytes| load(&path, bytes, FedConfig::validate), named);
    let summary =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/summary.json")).expect("fixture");
    fuzz(
        "connect results",
        &[summary],
        |bytes| ConnectResult::from_json(&text(bytes)).err().map(|e| e.to_string()),
        |m| m.contains("connect result"),
    );
}

#[test]
fn page_links() {
    let config = ConnectConfig { seed: 7, ..ConnectConfig::default() };
    let link = wsa_lab_app::link::fragment(&config).expect("a link");
    assert_eq!(wsa_lab_app::link::read(&link), Ok(Some(config)));
    fuzz(
        "page links",
        &[link.into_bytes()],
        |bytes| wsa_lab_app::link::read(&text(bytes)).err().map(|e| e.to_string()),
        |message| message.contains("opened the defaults instead"),
    );
}

#[test]
fn saved_app_settings() {
    let mut settings = wsa_lab_app::state::Settings::default();
    settings.config.seed = 5;
    let stored = serde_json::to_vec(&settings).expect("json");
    // A damaged store opens the defaults with a notice; it never stops the app.
    fuzz(
        "saved settings",
        &[stored],
        |bytes| wsa_lab_app::state::load(Some(text(bytes))).notice,
        |notice| notice.contains("starting with defaults"),
    );
}

fn data_fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/data").join(name)).expect("data fixture")
}

/// The readers of a user's data files (issue 30), seeded from the fixtures NumPy, Python's csv and
/// ImageMagick wrote (`fixtures/data/make.py`) and from CIFAR records written here.
#[test]
fn user_data_files() {
    use wsa_core::data::files::{CifarLabels, CsvOptions, RECORD_PIXELS, decode_image, parse_cifar, parse_csv};
    use wsa_core::data::files::{parse_npy, parse_npz};
    let named = |name: &'static str| move |message: &str| message.starts_with(&format!("data file {name}"));

    let csv = [data_fixture("table.csv"), data_fixture("table-test.csv"), b"1,2.5,0\n-3,4e2,1\n".to_vec()];
    let options = CsvOptions::default();
    fuzz(
        "CSV files",
        &csv,
        |bytes| parse_csv(bytes, Path::new("fuzzed.csv"), &options).err().map(|e| e.to_string()),
        named("fuzzed.csv"),
    );

    let npy = [data_fixture("images.npy"), data_fixture("table-be-fortran.npy"), data_fixture("labels.npy")];
    let refused = fuzz(
        ".npy files",
        &npy,
        |bytes| parse_npy(bytes, Path::new("fuzzed.npy")).err().map(|e| e.to_string()),
        named("fuzzed.npy"),
    );
    assert!(refused > CASES / 2, "most damaged arrays must be refused ({refused})");

    let npz = [data_fixture("rgb.npz"), data_fixture("keras.npz")];
    let refused = fuzz(
        ".npz archives",
        &npz,
        |bytes| parse_npz(bytes, Path::new("fuzzed.npz")).err().map(|e| e.to_string()),
        named("fuzzed.npz"),
    );
    assert!(refused > CASES / 2, "most damaged archives must be refused ({refused})");

    let mut rng = Rng::new(3);
    let cifar10: Vec<u8> =
        (0..3).flat_map(|_| std::iter::once(rng.below(10) as u8).chain((0..RECORD_PIXELS).map(|i| i as u8))).collect();
    let cifar100: Vec<u8> = (0..2).flat_map(|_| [7u8, 77].into_iter().chain(vec![9u8; RECORD_PIXELS])).collect();
    for (name, labels, seed) in [
        ("CIFAR-10 batches", CifarLabels::Cifar10, cifar10),
        ("CIFAR-100 batches", CifarLabels::Cifar100Fine, cifar100),
    ] {
        fuzz(
            name,
            &[seed],
            |bytes| parse_cifar(bytes, Path::new("fuzzed.bin"), labels).err().map(|e| e.to_string()),
            named("fuzzed.bin"),
        );
    }

    let images = [
        data_fixture("images/jpeg/cat/0.jpg"),
        data_fixture("images/jpeg/dog/1.jpg"),
        data_fixture("images/png16/0/0.png"),
    ];
    let refused = fuzz(
        "PNG and JPEG images",
        &images,
        |bytes| decode_image(bytes, Path::new("fuzzed-image")).err().map(|e| e.to_string()),
        named("fuzzed-image"),
    );
    assert!(refused > CASES / 4, "many damaged images must be refused ({refused})");
}
