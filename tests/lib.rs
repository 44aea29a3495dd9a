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

/// A fresh, empty temporary folder for one test.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wsa-lab-test-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

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
