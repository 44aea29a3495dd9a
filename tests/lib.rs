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
