//! Kernel warm-up: a GPU compiles each kernel the first time it runs (seconds on a cold
//! driver cache, see docs/benchmarks.md), so the app runs the operations of the configured
//! experiment once, on random data, while the user is still setting up. Nothing is kept but the
//! compiled kernels.

use super::connect::ConnectConfig;
use crate::data::Dataset;
use crate::device::ComputeDevice;
use crate::error::Result;
use crate::merge::interpolate;
use crate::model::ModelLayout;
use crate::rng::Rng;
use crate::scope::{Scope, device_histograms};
use crate::train::{DeviceData, Trainer, evaluate};
use std::sync::Arc;

/// One training step with the WSA term, one evaluation, one interpolation and the histograms of
/// `config`'s model at its batch size, on `device`; on the CPU there is nothing to compile, and
/// it returns at once.
pub async fn warm_up(config: &ConnectConfig, device: &ComputeDevice) -> Result<()> {
    if !device.is_gpu {
        return Ok(());
    }
    let (sample_shape, num_classes) = config.data.dataset.sample_shape_and_classes()?;
    let layout = Arc::new(ModelLayout::new(&config.model, &sample_shape, num_classes)?);
    let batch = config.train.batch_size.max(1);
    let mut rng = Rng::new(0);
    let dim: usize = sample_shape.iter().product();
    let data = Dataset {
        features: (0..batch * dim).map(|_| rng.normal() as f32).collect(),
        labels: (0..batch).map(|i| (i % num_classes) as u32).collect(),
        sample_shape,
        num_classes,
    };
    let uploaded = DeviceData::upload(&data, &device.device);
    let layers = config.wsa.layers.select(&layout);
    let target: Vec<Scope> = layers.iter().map(|_| Scope { mean: 0.0, std: 0.05 }).collect();
    let term = config.wsa.term(config.wsa.lambda.max(1.0), &layers, &target);
    let init = layout.init(&mut rng);
    let train = crate::train::TrainConfig { epochs: 1, ..config.train.clone() };
    let mut trainer = Trainer::new("warm-up", train, &init, batch, &device.device, 0)?;
    trainer.train_step(&uploaded, Some(&term));
    trainer.take_mean_loss().await?;
    evaluate(&layout, &trainer.params.tensors, &uploaded).await?;
    let merged = interpolate(&trainer.params, &init.to_device(&device.device), 0.5)?;
    device_histograms(&[&merged.tensors], &layers, config.histogram_bins).await?;
    Ok(())
}
