//! The user's data files (issue 30, "your data"): every format read as the tool that wrote it
//! reads it back (fixtures made by NumPy, Python's csv and ImageMagick: `fixtures/data/make.py`),
//! and from files a test writes (CIFAR batches, IDX pairs, PNGs); the config travels through
//! serde and loads the same numbers again. Refusals of malformed files are in `bad_input.rs`.

use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use wsa_core::data::files::{ArrayPair, CifarLabels, Header, IdxPair, LabelColumn, RECORD_PIXELS};
use wsa_core::data::{
    DataConfig, DataSplit, DatasetSpec, FileDataset, FileFormat, Memory, Normalisation, load, load_from,
};
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::ConnectConfig;
use wsa_core::rng::Rng;
use wsa_lab_tests::{f32_le_bytes, npy_file, temp_dir};

/// The values as stored: no division, no standardising.
const RAW: Normalisation = Normalisation { divide_by: Some(1.0), standardise: false };

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/data").join(name)
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("expected.json")).expect("expected.json")).expect("json")
}

fn numbers(value: &Value) -> Vec<f64> {
    value.as_array().expect("an array").iter().map(|v| v.as_f64().expect("a number")).collect()
}

fn config(format: FileFormat, normalisation: Normalisation) -> DataConfig {
    DataConfig { dataset: DatasetSpec::File(FileDataset { format, normalisation }), ..DataConfig::default() }
}

fn assert_close(got: &[f32], want: &[f64], tolerance: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((f64::from(*g) - w).abs() <= tolerance, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn csv_fixtures_read_as_python_wrote_them_with_names_numbered_in_sorted_order() {
    let config = config(
        FileFormat::Csv {
            train: fixture("table.csv"),
            test: Some(fixture("table-test.csv")),
            label_column: Some(LabelColumn::Name("species".into())),
            header: Header::Auto,
        },
        RAW,
    );
    let split = load(&config, 0).expect("the fixtures read");
    let expected = expected();
    for (set, name) in [(&split.train, "table.csv"), (&split.test, "table-test.csv")] {
        assert_close(&set.features, &numbers(&expected[name]["features"]), 1e-6, name);
        let names: Vec<&str> =
            expected[name]["labels"].as_array().expect("labels").iter().flat_map(Value::as_str).collect();
        let classes: Vec<u32> = names
            .iter()
            .map(|n| ["setosa", "versicolor", "virginica"].iter().position(|s| s == n).expect("a species") as u32)
            .collect();
        assert_eq!(set.labels, classes, "{name}");
        assert_eq!((set.sample_shape.as_slice(), set.num_classes), ([2].as_slice(), 3));
    }
    assert_eq!(split.name, "table.csv");
    assert_eq!(config.dataset.sample_shape_and_classes().expect("reads"), (vec![2], 3));
}

#[test]
fn npy_fixtures_read_as_numpy_wrote_them_fortran_and_big_endian_included() {
    let expected = expected();
    let images = config(
        FileFormat::Npy {
            train: ArrayPair { features: fixture("images.npy"), labels: fixture("labels.npy") },
            test: Some(ArrayPair { features: fixture("images.npy"), labels: fixture("labels.npy") }),
        },
        Normalisation { standardise: false, ..Normalisation::default() },
    );
    let split = load(&images, 0).expect("reads");
    // uint8 pixels: divided by 255 by default.
    let want: Vec<f64> =
        numbers(&expected["images.npy"]["values"]).iter().map(|v| f64::from(*v as f32 / 255.0)).collect();
    assert_close(&split.train.features, &want, 0.0, "images.npy");
    assert_eq!((split.train.sample_shape.clone(), split.train.num_classes), (vec![1, 4, 5], 3));
    assert_eq!(split.train.labels, vec![0, 1, 2, 0, 1, 2]);

    let table = config(
        FileFormat::Npy {
            train: ArrayPair { features: fixture("table-be-fortran.npy"), labels: fixture("table-labels.npy") },
            test: Some(ArrayPair { features: fixture("table-be-fortran.npy"), labels: fixture("table-labels.npy") }),
        },
        Normalisation { standardise: false, ..Normalisation::default() },
    );
    let split = load(&table, 0).expect("reads");
    assert_close(&split.train.features, &numbers(&expected["table-be-fortran.npy"]["values"]), 0.0, "fortran");
    assert_eq!((split.train.sample_shape.clone(), split.train.labels.clone()), (vec![3], vec![1, 0, 1, 0, 1]));
}

#[test]
fn npz_fixtures_pick_x_and_y_or_keras_splits() {
    let expected = expected();
    let rgb = config(
        FileFormat::Npz { train: fixture("rgb.npz"), test: Some(fixture("rgb.npz")), features: None, labels: None },
        RAW,
    );
    let split = load(&rgb, 0).expect("reads");
    assert_close(&split.train.features, &numbers(&expected["rgb.npz"]["values"]), 0.0, "rgb.npz");
    assert_eq!((split.train.sample_shape.clone(), split.train.num_classes), (vec![3, 2, 2], 4));
    assert_eq!(split.train.labels, vec![3, 0, 3, 1]);

    // x_train/y_train with x_test/y_test: the archive's own split, no seeded one.
    let keras = config(FileFormat::Npz { train: fixture("keras.npz"), test: None, features: None, labels: None }, RAW);
    let split = load(&keras, 0).expect("reads");
    assert_close(&split.train.features, &numbers(&expected["keras.npz"]["train"]), 0.0, "x_train");
    assert_close(&split.test.features, &numbers(&expected["keras.npz"]["test"]), 0.0, "x_test");
    assert_eq!((split.train.labels.clone(), split.test.labels.clone()), (vec![0, 1, 0, 1, 0, 1], vec![1, 0]));
    // Named arrays: the test arrays as training data.
    let named = config(
        FileFormat::Npz {
            train: fixture("keras.npz"),
            test: None,
            features: Some("x_test".into()),
            labels: Some("y_test".into()),
        },
        RAW,
    );
    assert_eq!(named.dataset.sample_shape_and_classes().expect("reads"), (vec![1, 3, 3], 2));
}

#[test]
fn image_folder_fixtures_decode_as_imagemagick_decodes_them() {
    let expected = &expected()["images"];
    // JPEG decoders may round the inverse DCT differently: a few levels apart at most.
    for (kind, classes, ext, tolerance, channels) in
        [("jpeg", ["cat", "dog"], "jpg", 3.0, 3), ("png16", ["0", "1"], "png", 0.0, 1)]
    {
        let folder = fixture(&format!("images/{kind}"));
        let set = config(FileFormat::ImageFolder { train: folder.clone(), test: Some(folder) }, RAW);
        let split = load(&set, 0).expect(kind);
        assert_eq!((split.train.sample_shape.clone(), split.train.num_classes), (vec![channels, 6, 8], 2), "{kind}");
        assert_eq!(split.train.labels, vec![0, 0, 1, 1], "{kind}: class by class, in name order");
        let want: Vec<f64> = classes
            .iter()
            .flat_map(|class| (0..2).flat_map(move |k| numbers(&expected[format!("{kind}/{class}/{k}.{ext}")])))
            .collect();
        assert_close(&split.train.features, &want, tolerance, kind);
    }
}

/// PNG bytes of `pixels` (interleaved, `color` RGB or grayscale), written with the png crate.
fn png(width: u32, height: u32, color: png::ColorType, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(pixels).expect("png data");
    writer.finish().expect("png end");
    out
}

/// A page's dropped folder, in memory: PNGs of 10 numbered classes, channel-major order checked.
#[test]
fn a_folder_held_in_memory_reads_like_one_on_disk() {
    let mut memory = Memory::default();
    for class in 0..11u8 {
        // Interleaved RGB: red = class, green = 100 + class, blue = 200 + x.
        let pixels: Vec<u8> = (0..6u8).flat_map(|x| [class, 100 + class, 200 + x % 3]).collect();
        memory.insert(format!("drop/{class}/a.png"), png(3, 2, png::ColorType::Rgb, &pixels));
    }
    memory.insert("drop/README.txt", b"not an image".to_vec());
    memory.insert("drop/5/.hidden.png", b"not read".to_vec());
    let set = config(FileFormat::ImageFolder { train: "drop".into(), test: Some("drop".into()) }, RAW);
    let split = load_from(&set, 0, &memory).expect("reads from memory");
    // Numeric folder names in numeric order: "10" after "9".
    assert_eq!(split.train.labels, (0..11).collect::<Vec<u32>>());
    let ten = split.train.sample(10);
    assert_eq!(&ten[..6], &[10.0; 6], "the red plane first");
    assert_eq!(&ten[6..12], &[110.0; 6]);
    assert_eq!(&ten[12..15], &[200.0, 201.0, 202.0]);
    // Not in memory: named.
    let err = load(&set, 0).expect_err("no folder `drop` on disk");
    assert!(err.to_string().contains("drop"), "{err}");
}

/// CIFAR-10 batches and a CIFAR-100 file in the binary format, written here (the sets cannot be
/// fetched in this sandbox): records read in order, labels and pixel planes where they belong.
#[test]
fn cifar_batches_written_here_read_record_by_record() {
    let dir = temp_dir("cifar");
    let mut rng = Rng::new(10);
    let mut want_labels = Vec::new();
    let mut want_pixels = Vec::new();
    let mut batches = Vec::new();
    for b in 0..2 {
        let mut bytes = Vec::new();
        for _ in 0..5 {
            let label = rng.below(10) as u8;
            let pixels: Vec<u8> = (0..RECORD_PIXELS).map(|_| rng.below(256) as u8).collect();
            bytes.push(label);
            bytes.extend(&pixels);
            want_labels.push(u32::from(label));
            want_pixels.extend(pixels.iter().map(|&p| f64::from(f32::from(p) / 255.0)));
        }
        let path = dir.join(format!("data_batch_{}.bin", b + 1));
        std::fs::write(&path, &bytes).expect("write");
        batches.push(path);
    }
    let set = config(
        FileFormat::Cifar {
            train: batches.clone(),
            test: Some(vec![batches[1].clone()]),
            labels: CifarLabels::Cifar10,
        },
        Normalisation { standardise: false, ..Normalisation::default() },
    );
    let split = load(&set, 0).expect("reads");
    assert_eq!((split.train.labels.clone(), split.train.num_classes), (want_labels.clone(), 10));
    assert_close(&split.train.features, &want_pixels, 0.0, "pixels");
    assert_eq!(split.test.labels, want_labels[5..].to_vec());
    assert_eq!(split.name, "data_batch_1.bin");

    // CIFAR-100: coarse then fine label byte; 20 or 100 classes whatever the file holds.
    let mut bytes = Vec::new();
    for (coarse, fine) in [(3u8, 77u8), (19, 99), (0, 5)] {
        bytes.extend([coarse, fine]);
        bytes.extend(vec![fine; RECORD_PIXELS]);
    }
    std::fs::write(dir.join("train.bin"), &bytes).expect("write");
    for (labels, want, classes) in
        [(CifarLabels::Cifar100Fine, vec![77, 99, 5], 100), (CifarLabels::Cifar100Coarse, vec![3, 19, 0], 20)]
    {
        let set = config(FileFormat::Cifar { train: vec![dir.join("train.bin")], test: None, labels }, RAW);
        let all = wsa_core::data::files::parse_cifar(&bytes, Path::new("train.bin"), labels).expect("parses");
        assert_eq!(all.features[RECORD_PIXELS], 99.0);
        assert_eq!(set.dataset.sample_shape_and_classes().expect("from the format"), (vec![3, 32, 32], classes));
        let split = load(&set, 0).expect("reads");
        let mut got: Vec<u32> = split.train.labels.iter().chain(&split.test.labels).copied().collect();
        got.sort_unstable();
        let mut want = want;
        want.sort_unstable();
        assert_eq!((got, split.train.num_classes), (want, classes));
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The embedded MNIST subset's two files, given as a user's IDX pair, load bit for bit as the
/// built-in `mnist-small` (same split, same normalisation): one reader, one pipeline.
#[test]
fn an_idx_pair_of_mnist_files_gives_the_built_in_sets_numbers() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/mnist-small");
    let pair = IdxPair { images: assets.join("images-idx3-ubyte.gz"), labels: assets.join("labels-idx1-ubyte.gz") };
    let mut user = config(FileFormat::Idx { train: pair, test: None }, Normalisation::default());
    user.max_train = Some(1000);
    let built_in = DataConfig { dataset: DatasetSpec::MnistSmall, ..user.clone() };
    let (a, b): (DataSplit, DataSplit) = (load(&user, 7).expect("user"), load(&built_in, 7).expect("built in"));
    assert_eq!((a.train, a.test), (b.train, b.test));
    assert_eq!(a.name, "images-idx3-ubyte.gz");

    // Any IDX pair, raw or gzipped, float images too, with its test files.
    let dir = temp_dir("idx");
    let idx = |kind: u8, dims: &[u32], data: Vec<u8>| {
        let mut v = vec![0, 0, kind, dims.len() as u8];
        v.extend(dims.iter().flat_map(|d| d.to_be_bytes()));
        v.extend(data);
        v
    };
    let floats: Vec<u8> = [0.5f32, -1.0, 2.0, 0.25].iter().flat_map(|v| v.to_be_bytes()).collect();
    std::fs::write(dir.join("x"), idx(0x0D, &[2, 2], floats)).expect("write");
    std::fs::write(dir.join("y.gz"), gzip(&idx(0x08, &[2], vec![4, 1]))).expect("write");
    let pair = IdxPair { images: dir.join("x"), labels: dir.join("y.gz") };
    let set = config(FileFormat::Idx { train: pair.clone(), test: Some(pair) }, RAW);
    let split = load(&set, 0).expect("reads");
    assert_eq!(split.train.features, vec![0.5, -1.0, 2.0, 0.25]);
    assert_eq!(
        (split.train.labels.clone(), split.train.num_classes, split.train.sample_shape),
        (vec![4, 1], 5, vec![2])
    );
}

/// Files written here: a CSV with class numbers and no header, `.npy` arrays, a `.npz` archive
/// (deflated by the zip crate); a seeded split when no test files are given.
#[test]
fn files_written_here_read_and_split_by_the_seed() {
    let dir = temp_dir("written");
    let csv: String = (0..40).map(|i| format!("{i},{i}.5,{}\n", i % 4)).collect();
    std::fs::write(dir.join("t.csv"), csv).expect("write");
    let set =
        config(FileFormat::Csv { train: dir.join("t.csv"), test: None, label_column: None, header: Header::Auto }, RAW);
    let split = load(&set, 3).expect("reads");
    assert_eq!((split.train.len(), split.test.len(), split.train.num_classes), (30, 10, 4));
    for set in [&split.train, &split.test] {
        for i in 0..set.len() {
            let row = set.sample(i);
            assert_eq!((row[1], set.labels[i]), (row[0] + 0.5, row[0] as u32 % 4), "rows stay whole");
        }
    }
    assert_ne!(load(&set, 4).expect("reads").test, split.test, "another seed, another split");

    let x: Vec<f32> = (0..12).map(|v| v as f32 * 0.5).collect();
    let y: Vec<u8> = [0i64, 1, 2, 1, 0, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("x.npy"), npy_file("<f4", &[6, 2], &f32_le_bytes(&x))).expect("write");
    std::fs::write(dir.join("y.npy"), npy_file("<i8", &[6], &y)).expect("write");
    let pair = ArrayPair { features: dir.join("x.npy"), labels: dir.join("y.npy") };
    let npy_set = config(FileFormat::Npy { train: pair.clone(), test: Some(pair) }, RAW);
    let from_npy = load(&npy_set, 0).expect("reads");
    assert_eq!((from_npy.train.features.clone(), from_npy.train.labels.clone()), (x.clone(), vec![0, 1, 2, 1, 0, 2]));

    // The same arrays in an archive under other names, picked as the only two.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, file) in [("targets.npy", "y.npy"), ("inputs.npy", "x.npy")] {
        zip.start_file(name, options).expect("entry");
        zip.write_all(&std::fs::read(dir.join(file)).expect("read")).expect("write");
    }
    std::fs::write(dir.join("a.npz"), zip.finish().expect("zip").into_inner()).expect("write");
    let npz_set = config(
        FileFormat::Npz { train: dir.join("a.npz"), test: Some(dir.join("a.npz")), features: None, labels: None },
        RAW,
    );
    let from_npz = load(&npz_set, 0).expect("reads");
    assert_eq!((from_npz.train, from_npz.test), (from_npy.train, from_npy.test));
}

/// A run's config with a file set: written, read back equal, and loading the same numbers twice;
/// standardised on the training split only (the default).
#[test]
fn a_file_set_config_round_trips_and_loads_the_same_numbers() {
    let mut config = ConnectConfig::default();
    config.data = self::config(
        FileFormat::Csv {
            train: fixture("table.csv"),
            test: None,
            label_column: Some(LabelColumn::Index(2)),
            header: Header::Present,
        },
        Normalisation::default(),
    );
    let text = serde_json::to_string_pretty(&config).expect("json");
    for field in ["\"name\": \"file\"", "\"format\": \"csv\"", "\"label_column\": 2", "\"standardise\": true"] {
        assert!(text.contains(field), "{field} in {text}");
    }
    let back = ConnectConfig::from_json(&text).expect("reads back");
    assert_eq!(back, config);
    let (a, b) = (load(&config.data, 5).expect("loads"), load(&back.data, 5).expect("loads"));
    assert_eq!(a, b);
    let n = a.train.len() as f64;
    for j in 0..2 {
        let mean = (0..a.train.len()).map(|i| f64::from(a.train.sample(i)[j])).sum::<f64>() / n;
        assert!(mean.abs() < 1e-6, "feature {j} standardised on the training split: mean {mean}");
    }
    // Written by hand, the short way: defaults filled in.
    let short = r#"{"name": "file", "format": "image-folder", "train": "pics"}"#;
    let spec: DatasetSpec = serde_json::from_str(short).expect("reads");
    assert_eq!(
        spec,
        DatasetSpec::File(FileDataset {
            format: FileFormat::ImageFolder { train: "pics".into(), test: None },
            normalisation: Normalisation::default(),
        })
    );
    assert_eq!(spec.label(), "pics");
    let err = serde_json::from_str::<DatasetSpec>(r#"{"name": "file", "format": "parquet", "train": "t"}"#)
        .expect_err("unknown format");
    assert!(err.to_string().contains("parquet"), "{err}");
}

/// A CSV set trains end to end through the connect experiment (tiny, on the CPU).
#[test]
fn a_csv_set_runs_an_experiment() {
    let dir = temp_dir("csv-run");
    let mut rng = Rng::new(1);
    let mut csv = String::from("x,y,side\n");
    for _ in 0..200 {
        let (x, y) = (rng.normal(), rng.normal());
        csv.push_str(&format!("{x},{y},{}\n", if x + y > 0.0 { "right" } else { "left" }));
    }
    std::fs::write(dir.join("sides.csv"), csv).expect("write");
    let mut config = wsa_lab_tests::small_connect_config(2);
    config.data = self::config(
        FileFormat::Csv {
            train: dir.join("sides.csv"),
            test: None,
            label_column: Some(LabelColumn::Name("side".into())),
            header: Header::Auto,
        },
        Normalisation::default(),
    );
    config.model = wsa_core::model::ModelConfig::mlp(vec![8]);
    let result = wsa_core::wait(wsa_core::experiment::connect::run(
        &config,
        &wsa_core::device::cpu(),
        &mut wsa_core::cancel::Silent,
    ))
    .expect("runs");
    let result = result.result;
    assert_eq!((result.dataset.as_str(), result.train_samples, result.test_samples), ("sides.csv", 150, 50));
}
