//! Our own training loop (burn's `Learner` does not run in the browser): SGD with momentum or
//! Adam over the flat, path-addressed parameters, with the WSA term added to the loss.

use crate::data::Dataset;
use crate::device::read_f64;
use crate::error::{Result, WsaError};
use crate::model::{HostParams, ModelLayout, Params, forward};
use crate::rng::Rng;
use crate::step::{self, AdamStep, SgdStep};
use crate::wsa::WsaTerm;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// SGD with (heavy-ball) momentum, as PyTorch's `SGD`.
    #[default]
    Sgd,
    /// Adam with L2 weight decay added to the gradient, as PyTorch's `Adam`.
    Adam,
}

crate::choices!(OptimizerKind, "optimizer" {
    Sgd => "sgd", "SGD",
    Adam => "adam", "Adam",
});

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    /// SGD momentum (ignored by Adam).
    pub momentum: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub epochs: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Sgd,
            learning_rate: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
            batch_size: 64,
            epochs: 10,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self, train_samples: usize) -> Result<()> {
        let lr = self.learning_rate;
        if !(lr.is_finite() && lr > 0.0 && lr <= 10.0) {
            return Err(WsaError::invalid("train.learning_rate", lr, "must be a number in (0, 10]"));
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(WsaError::invalid("train.momentum", self.momentum, "must lie in [0, 1)"));
        }
        if !(self.weight_decay.is_finite() && (0.0..=1.0).contains(&self.weight_decay)) {
            return Err(WsaError::invalid("train.weight_decay", self.weight_decay, "must lie in [0, 1]"));
        }
        if self.batch_size == 0 || self.batch_size > train_samples.max(1) {
            return Err(WsaError::invalid(
                "train.batch_size",
                self.batch_size,
                &format!("must be between 1 and the number of training samples ({train_samples})"),
            ));
        }
        if self.epochs == 0 || self.epochs > 10_000 {
            return Err(WsaError::invalid("train.epochs", self.epochs, "must be between 1 and 10000"));
        }
        Ok(())
    }
}

/// A dataset uploaded once to the compute device.
#[derive(Clone, Debug)]
pub struct DeviceData {
    pub features: Tensor<2>,
    pub labels: Tensor<1, Int>,
    pub len: usize,
}

impl DeviceData {
    pub fn upload(data: &Dataset, device: &Device) -> Self {
        let n = data.len();
        let features = Tensor::<2>::from_data(TensorData::new(data.features.clone(), [n, data.dim()]), device);
        let labels: Vec<i64> = data.labels.iter().map(|&l| i64::from(l)).collect();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
        Self { features, labels, len: n }
    }

    fn rows(&self, indices: &[usize]) -> (Tensor<2>, Tensor<1, Int>) {
        let device = self.features.device();
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [indices.len()]), &device);
        (step::batch_rows(self.features.clone(), idx.clone()), self.labels.clone().select(0, idx))
    }
}

/// Sum of cross-entropy over a batch (labels as class indices).
fn cross_entropy_sum(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    let logp = log_softmax(logits, 1);
    logp.gather(1, labels.reshape([b, 1])).sum().neg()
}

/// Test loss (mean cross-entropy) and accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub loss: f64,
    pub accuracy: f64,
}

/// Evaluates in chunks on the parameters' device; two numbers come back.
pub async fn evaluate(layout: &ModelLayout, params: &[Tensor<1>], data: &DeviceData) -> Result<Metrics> {
    const CHUNK: usize = 2048;
    let mut loss_sum: Option<Tensor<1>> = None;
    let mut correct_sum: Option<Tensor<1, Int>> = None;
    let mut start = 0;
    while start < data.len {
        let len = CHUNK.min(data.len - start);
        let x = data.features.clone().narrow(0, start, len);
        let y = data.labels.clone().narrow(0, start, len);
        let logits = forward(layout, params, x);
        let correct = logits.clone().argmax(1).reshape([len]).equal(y.clone()).int().sum();
        let loss = cross_entropy_sum(logits, y);
        loss_sum = Some(match loss_sum {
            Some(s) => s + loss,
            None => loss,
        });
        correct_sum = Some(match correct_sum {
            Some(s) => s + correct,
            None => correct,
        });
        start += len;
    }
    let (Some(loss), Some(correct)) = (loss_sum, correct_sum) else {
        return Err(WsaError::invalid("evaluation set", 0, "is empty"));
    };
    // Both numbers in one read: one wait for the device per evaluation.
    let both = read_f64(Tensor::cat(vec![loss, correct.float()], 0)).await?;
    let [loss, correct] = both[..] else { return Err(WsaError::Device("short read-back".into())) };
    Ok(Metrics { loss: loss / data.len as f64, accuracy: correct / data.len as f64 })
}

async fn read_scalar(t: Tensor<1>) -> Result<f64> {
    read_f64(t).await?.first().copied().ok_or_else(|| WsaError::Device("empty read-back".into()))
}

enum OptimizerState {
    Sgd { velocity: Vec<Option<Tensor<1>>> },
    Adam { m: Vec<Option<Tensor<1>>>, v: Vec<Option<Tensor<1>>>, t: i32 },
}

/// One model in training: its parameters on the device, its optimiser state and its own
/// seeded data order.
pub struct Trainer {
    pub name: String,
    pub config: TrainConfig,
    pub params: Params,
    state: OptimizerState,
    order_rng: Rng,
    order: Vec<usize>,
    cursor: usize,
    pub step: usize,
    pub steps_per_epoch: usize,
    loss_sum: Option<Tensor<1>>,
    loss_steps: usize,
    /// FedProx: the anchor weights and mu.
    proximal: Option<(Vec<Tensor<1>>, f64)>,
    /// How the WSA term's gradient is computed.
    pub wsa_gradient: WsaGradient,
}

/// Two ways to the WSA term's gradient, equal up to f32 rounding (a unit test checks it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WsaGradient {
    /// [`WsaTerm::closed_form`]: our statistics, coefficient and gradient kernels. The default: it is
    /// the faster (`wsa-lab bench --only train` measures both; numbers in docs/benchmarks.md).
    #[default]
    ClosedForm,
    /// burn's autodiff through [`WsaTerm::penalty`].
    Autodiff,
}

impl Trainer {
    pub fn new(
        name: &str,
        config: TrainConfig,
        init: &HostParams,
        train_len: usize,
        device: &Device,
        order_seed: u64,
    ) -> Result<Self> {
        init.check_finite()?;
        Self::on_device(name, config, init.to_device(device), train_len, order_seed)
    }

    /// A trainer starting from parameters already on the device (no upload), e.g. a federated
    /// client starting from the global model. Optimiser state starts empty.
    pub fn on_device(
        name: &str,
        config: TrainConfig,
        params: Params,
        train_len: usize,
        order_seed: u64,
    ) -> Result<Self> {
        config.validate(train_len)?;
        let n = params.tensors.len();
        let state = match config.optimizer {
            OptimizerKind::Sgd => OptimizerState::Sgd { velocity: vec![None; n] },
            OptimizerKind::Adam => OptimizerState::Adam { m: vec![None; n], v: vec![None; n], t: 0 },
        };
        Ok(Self {
            name: name.to_string(),
            steps_per_epoch: train_len.div_ceil(config.batch_size),
            config,
            params,
            state,
            order_rng: Rng::derive(order_seed, "data-order"),
            order: (0..train_len).collect(),
            // An exhausted cursor: the first batch shuffles.
            cursor: train_len,
            step: 0,
            loss_sum: None,
            loss_steps: 0,
            proximal: None,
            wsa_gradient: WsaGradient::default(),
        })
    }

    /// Adds FedProx's (mu/2) ||w - anchor||^2 to the loss (through its gradient mu (w - anchor)).
    pub fn with_proximal(mut self, anchor: &Params, mu: f64) -> Self {
        self.proximal = Some((anchor.tensors.clone(), mu));
        self
    }

    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch * self.config.epochs
    }

    pub fn finished(&self) -> bool {
        self.step >= self.total_steps()
    }

    pub fn layout(&self) -> &Arc<ModelLayout> {
        &self.params.layout
    }

    fn next_batch(&mut self) -> Vec<usize> {
        if self.cursor >= self.order.len() {
            self.order_rng.shuffle(&mut self.order);
            self.cursor = 0;
        }
        let end = (self.cursor + self.config.batch_size).min(self.order.len());
        let batch = self.order[self.cursor..end].to_vec();
        self.cursor = end;
        batch
    }

    /// One optimisation step on the next mini-batch; `wsa` adds the regulariser.
    pub fn train_step(&mut self, data: &DeviceData, wsa: Option<&WsaTerm>) {
        let batch = self.next_batch();
        let (x, y) = data.rows(&batch);
        let leaves: Vec<Tensor<1>> = self.params.tensors.iter().map(|t| t.clone().autodiff().require_grad()).collect();
        let logits = forward(&self.params.layout, &leaves, x.autodiff());
        let ce = cross_entropy_sum(logits, y) / batch.len() as f64;
        let wsa = wsa.filter(|term| term.lambda > 0.0);
        let closed = match (wsa, self.wsa_gradient) {
            (Some(term), WsaGradient::ClosedForm) => term.closed_form(&self.params.tensors),
            _ => None,
        };
        let loss = match (wsa, self.wsa_gradient) {
            (Some(term), WsaGradient::Autodiff) => match term.penalty(&leaves) {
                Some(penalty) => ce + penalty,
                None => ce,
            },
            _ => ce,
        };
        let grads = loss.backward();
        let mut loss = loss.inner().detach();
        let mut wsa_grads: Vec<Option<Tensor<1>>> = vec![None; leaves.len()];
        if let (Some(term), Some(closed)) = (wsa, closed) {
            loss = loss + closed.value;
            for (&i, g) in term.layers.iter().zip(closed.gradients) {
                wsa_grads[i] = Some(g);
            }
        }
        self.record_loss(loss);
        for (i, leaf) in leaves.iter().enumerate() {
            let Some(mut g) = leaf.grad(&grads) else { continue };
            if let Some(extra) = wsa_grads[i].take() {
                g = g + extra;
            }
            self.apply_gradient(i, g);
        }
        self.end_step();
    }

    /// One optimisation step on the next mini-batch of a model computed from the trained
    /// parameters: `model` maps them (as autodiff leaves) to the parameters the loss is taken at,
    /// e.g. a point on a curve through them and two fixed models. The gradient reaches the trained
    /// parameters through `model`.
    pub fn train_step_through(&mut self, data: &DeviceData, model: impl FnOnce(&[Tensor<1>]) -> Vec<Tensor<1>>) {
        let batch = self.next_batch();
        let (x, y) = data.rows(&batch);
        let leaves: Vec<Tensor<1>> = self.params.tensors.iter().map(|t| t.clone().autodiff().require_grad()).collect();
        let at = model(&leaves);
        let loss = cross_entropy_sum(forward(&self.params.layout, &at, x.autodiff()), y) / batch.len() as f64;
        let grads = loss.backward();
        self.record_loss(loss.inner().detach());
        for (i, leaf) in leaves.iter().enumerate() {
            if let Some(g) = leaf.grad(&grads) {
                self.apply_gradient(i, g);
            }
        }
        self.end_step();
    }

    fn record_loss(&mut self, loss: Tensor<1>) {
        self.loss_sum = Some(match self.loss_sum.take() {
            Some(s) => s + loss,
            None => loss,
        });
        self.loss_steps += 1;
    }

    /// Updates parameter `i` with its loss gradient `g`, adding weight decay and FedProx's term.
    fn apply_gradient(&mut self, i: usize, mut g: Tensor<1>) {
        let cfg = &self.config;
        let (lr, wd) = (cfg.learning_rate, cfg.weight_decay);
        let w = self.params.tensors[i].clone();
        if wd > 0.0 {
            g = g + w.clone() * wd;
        }
        if let Some((anchor, mu)) = &self.proximal {
            g = g + (w.clone() - anchor[i].clone()) * *mu;
        }
        let weight = match &mut self.state {
            OptimizerState::Sgd { velocity } => {
                let carried = velocity[i].take().filter(|_| cfg.momentum > 0.0);
                let step =
                    SgdStep { momentum: cfg.momentum as f32, learning_rate: lr as f32, carry: carried.is_some() };
                let (weight, v) = step::sgd_update(w, g, carried, step);
                velocity[i] = Some(v);
                weight
            }
            OptimizerState::Adam { m, v, t } => {
                let moments = m[i].take().zip(v[i].take());
                let step = AdamStep::new(0.9, 0.999, 1e-8, lr, *t + 1);
                let (weight, mi, vi) = step::adam_update(w, g, moments, step);
                (m[i], v[i]) = (Some(mi), Some(vi));
                weight
            }
        };
        self.params.tensors[i] = weight;
    }

    fn end_step(&mut self) {
        if let OptimizerState::Adam { t, .. } = &mut self.state {
            *t += 1;
        }
        self.step += 1;
    }

    /// Mean training loss since the last call (one read from the device); `Diverged` when it is
    /// not finite.
    pub async fn take_mean_loss(&mut self) -> Result<f64> {
        let Some(sum) = self.loss_sum.take() else { return Ok(f64::NAN) };
        let mean = read_scalar(sum).await? / self.loss_steps.max(1) as f64;
        self.loss_steps = 0;
        if !mean.is_finite() {
            return Err(WsaError::Diverged { model: self.name.clone(), step: self.step, value: mean as f32 });
        }
        Ok(mean)
    }
}
