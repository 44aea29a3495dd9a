//! Training A and B side by side, step by step: plain, or with the WSA term toward a target scope
//! (fused from A and B every few steps, fixed, or a reference model's), with the training curves
//! recorded per epoch.

use super::{ConnectConfig, Endpoint, EpochRecord};
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::experiment::method::Training;
use crate::experiment::{Event, Observer};
use crate::model::{HostParams, Params};
use crate::scope::{FusionRule, Scope, device_scopes, fuse};
use crate::train::{DeviceData, Trainer, evaluate};
use crate::wsa::TargetSource;

/// A trained pair on the device, with the target its training ended on.
pub(super) struct PairRun {
    pub(super) a: Params,
    pub(super) b: Params,
    pub(super) target: Vec<Scope>,
}

/// Everything fixed across the trained pairs.
pub(super) struct Setup<'a> {
    pub(super) config: &'a ConnectConfig,
    pub(super) device: &'a ComputeDevice,
    pub(super) layers: Vec<usize>,
    pub(super) init_a: HostParams,
    pub(super) init_b: HostParams,
    pub(super) train_a: DeviceData,
    pub(super) train_b: DeviceData,
    pub(super) test: DeviceData,
    pub(super) order_seeds: (u64, u64),
}

impl Setup<'_> {
    fn trainers(&self) -> Result<(Trainer, Trainer)> {
        let (ca, cb) = self.config.train_configs();
        let device = &self.device.device;
        let a = Trainer::new(Endpoint::A.name(), ca, &self.init_a, self.train_a.len, device, self.order_seeds.0)?;
        let b = Trainer::new(Endpoint::B.name(), cb, &self.init_b, self.train_b.len, device, self.order_seeds.1)?;
        Ok((a, b))
    }

    async fn fused(&self, a: &Trainer, b: &Trainer, rule: FusionRule) -> Result<Vec<Scope>> {
        let sa = device_scopes(&a.params, &self.layers).await?;
        let sb = device_scopes(&b.params, &self.layers).await?;
        fuse(&[sa, sb], &[1.0, 1.0], rule)
    }

    /// Trains A and B step by step together; `regularise` says which of them get the WSA term,
    /// `fixed_target` is a constant target (else the fused target is refreshed every k steps).
    /// `frozen_a` replaces A with an already trained model that takes no steps.
    async fn train_pair(
        &self,
        training: Training,
        regularise: (bool, bool),
        fixed_target: Option<Vec<Scope>>,
        frozen_a: Option<Params>,
        curves: &mut Vec<EpochRecord>,
        observer: &mut dyn Observer,
    ) -> Result<PairRun> {
        let (mut a, mut b) = self.trainers()?;
        if let Some(params) = &frozen_a {
            a.params = params.clone();
            a.step = a.total_steps();
        }
        let sync_every = match self.config.wsa.target {
            TargetSource::Fused { sync_every } => sync_every,
            _ => usize::MAX,
        };
        let rule = self.config.wsa.fusion;
        let mut target = match &fixed_target {
            Some(t) => t.clone(),
            None => self.fused(&a, &b, rule).await?,
        };
        let lambda = self.config.lambda(training);
        let mut step = 0usize;
        while !(a.finished() && b.finished()) {
            if observer.is_cancelled() {
                return Err(WsaError::Cancelled);
            }
            if fixed_target.is_none() && step > 0 && step.is_multiple_of(sync_every) {
                target = self.fused(&a, &b, rule).await?;
            }
            let term = self.config.wsa.term(lambda, &self.layers, &target);
            let sides = [
                (Endpoint::A, &mut a, &self.train_a, regularise.0),
                (Endpoint::B, &mut b, &self.train_b, regularise.1),
            ];
            for (endpoint, trainer, data, on) in sides {
                if trainer.finished() {
                    continue;
                }
                trainer.train_step(data, on.then_some(&term));
                if trainer.step % trainer.steps_per_epoch == 0 {
                    let train_loss = trainer.take_mean_loss().await?;
                    let test_accuracy =
                        evaluate(&trainer.params.layout, &trainer.params.tensors, &self.test).await?.accuracy;
                    let epoch = trainer.step / trainer.steps_per_epoch;
                    let record = EpochRecord {
                        model: endpoint,
                        epoch,
                        train_loss,
                        test_accuracy,
                        scopes: device_scopes(&trainer.params, &self.layers).await?,
                    };
                    observer.on_event(&Event::Epoch {
                        pair: training,
                        epochs: trainer.config.epochs,
                        record: record.clone(),
                    });
                    curves.push(record);
                }
            }
            step += 1;
            observer.pause().await;
        }
        if fixed_target.is_none() {
            target = self.fused(&a, &b, rule).await?;
        }
        Ok(PairRun { a: a.params, b: b.params, target })
    }

    /// Trains the pair `training`; `plain` is the plain pair when it was trained already.
    pub(super) async fn train(
        &self,
        training: Training,
        plain: Option<&PairRun>,
        reference: Option<Vec<Scope>>,
        curves: &mut Vec<EpochRecord>,
        observer: &mut dyn Observer,
    ) -> Result<PairRun> {
        let lambda = self.config.lambda(training);
        if training == Training::Plain {
            observer.on_event(&Event::Stage("training the plain pair (lambda = 0)".into()));
            return self.train_pair(training, (false, false), None, None, curves, observer).await;
        }
        observer.on_event(&Event::Stage(format!("training the WSA pair (lambda = {lambda})")));
        match &self.config.wsa.target {
            TargetSource::Fused { .. } => self.train_pair(training, (true, true), None, None, curves, observer).await,
            TargetSource::Fixed => {
                let layout = &self.init_a.layout;
                let target = self
                    .layers
                    .iter()
                    .map(|&i| Scope { mean: 0.0, std: layout.params[i].init_std(layout.config.initializer()) })
                    .collect();
                self.train_pair(training, (true, true), Some(target), None, curves, observer).await
            }
            TargetSource::Reference { model: Some(_) } => {
                self.train_pair(training, (true, true), reference, None, curves, observer).await
            }
            TargetSource::Reference { model: None } => {
                // A is the plain A, frozen; only B is trained, toward A's final scope.
                let plain = plain.ok_or_else(|| {
                    WsaError::invalid("wsa.target", "reference", "needs the plain pair, which was not trained")
                })?;
                let target = device_scopes(&plain.a, &self.layers).await?;
                self.train_pair(training, (false, true), Some(target), Some(plain.a.clone()), curves, observer).await
            }
        }
    }
}
