//! Shared helpers for the workspace tests.

use wsa_core::data::DataConfig;
use wsa_core::experiment::connect::ConnectConfig;

/// A connect config small enough for a test on the CPU: digits, a narrow MLP, few epochs.
pub fn small_connect_config(epochs: usize) -> ConnectConfig {
    let mut config = ConnectConfig {
        data: DataConfig { max_train: Some(600), max_test: Some(300), ..DataConfig::default() },
        ..ConnectConfig::default()
    };
    config.model = wsa_core::model::ModelConfig::mlp(vec![32, 32]);
    config.train.epochs = epochs;
    // Same start, different learning rates: both learn within a few epochs, their scopes drift.
    config.pair =
        wsa_core::experiment::connect::PairDifference::LearningRate { a: 0.03, b: 0.2, different_init: false };
    config.path.points = 11;
    config
}

/// A `.npy` file as NumPy writes it (version 1, C order, header padded to 64 bytes) of `data`,
/// whose elements are `descr` (e.g. `<f4`, `|u1`).
pub fn npy_file(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

/// `values` as little-endian float32 bytes (a `<f4` array's data).
pub fn f32_le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

mod temp_dir;
pub use temp_dir::{TempDir, temp_dir};

/// A costly set-up that several cases of one test binary share (a warmed GPU's results, a page
/// driven in a browser): the first case that needs it runs it, the others wait for it and reuse
/// it. A set-up that panics is not run again for each case: every case that needs it fails with
/// its message.
pub struct Shared<T> {
    outcome: std::sync::OnceLock<Result<T, SetUpFailed>>,
}

/// Why a shared set-up did not finish: its panic message.
#[derive(Debug)]
pub struct SetUpFailed(pub String);

impl<T> Shared<T> {
    pub const fn new() -> Self {
        Self { outcome: std::sync::OnceLock::new() }
    }

    /// The set-up's value, running `set_up` if no case has yet; `what` names it in a failure.
    pub fn get(&self, what: &str, set_up: impl FnOnce() -> T) -> &T {
        let outcome = self.outcome.get_or_init(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(set_up)).map_err(|payload| {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(no message)".into());
                SetUpFailed(message)
            })
        });
        match outcome {
            Ok(value) => value,
            Err(SetUpFailed(message)) => panic!("{what} failed, so this case could not run: {message}"),
        }
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs one case at a time through `turn` (cases that share one GPU or one pair of cores and
/// must not overlap): a case that failed while holding it leaves it usable for the next.
pub fn one_at_a_time(turn: &std::sync::Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The files of tests/fixtures/torch (written by PyTorch: see its make.py).
pub fn torch_fixture_path(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/torch").join(file)
}

/// A model PyTorch wrote, read by its names and shapes (and its layout file), with the input
/// batch saved beside it and PyTorch's logits on that batch.
pub struct TorchFixture {
    pub params: wsa_core::model::HostParams,
    /// `rows` samples, row major.
    pub input: Vec<f32>,
    pub rows: usize,
    pub logits: Vec<f32>,
}

impl TorchFixture {
    pub fn load(name: &str) -> Self {
        let params = wsa_core::infer::load_inferred(&torch_fixture_path(&format!("{name}.safetensors")))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .params;
        let io = std::fs::read(torch_fixture_path(&format!("{name}.io.safetensors"))).expect("io fixture");
        let io = safetensors::SafeTensors::deserialize(&io).expect("io safetensors");
        let floats = |tensor: &str| {
            let view = io.tensor(tensor).unwrap_or_else(|e| panic!("{name} {tensor}: {e}"));
            let values: Vec<f32> =
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (view.shape()[0], values)
        };
        let ((rows, input), (_, logits)) = (floats("input"), floats("logits"));
        Self { params, input, rows, logits }
    }

    /// The lab's logits on the saved batch, on `device`, and their largest difference from
    /// PyTorch's.
    pub fn logits_on(&self, device: &burn::tensor::Device) -> (Vec<f32>, f32) {
        let x = burn::tensor::Tensor::<2>::from_data(
            burn::tensor::TensorData::new(self.input.clone(), [self.rows, self.input.len() / self.rows]),
            device,
        );
        let logits = self.params.to_device(device).logits(x).into_data().try_to_vec::<f32>().expect("logits");
        assert_eq!(logits.len(), self.logits.len());
        let worst = logits.iter().zip(&self.logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        (logits, worst)
    }
}
