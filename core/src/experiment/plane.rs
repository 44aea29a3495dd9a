//! The 2-D loss plane through three models (Garipov et al. 2018, figure 1): origin A, first axis
//! toward B, second axis toward the third model (a curve's control point, a model from a file)
//! made orthogonal to the first by Gram-Schmidt. Test loss and accuracy on a grid around the
//! three points, with the models, the line A-B and the curve projected on it. A grid point of a
//! BatchNorm model has its statistics re-estimated before it is evaluated (`batch_norm`).

use super::connect::{ConnectConfig, TrainedPair};
use super::curve::{CurveKind, train_control_point};
use super::{Event, Observer};
use crate::batch_norm::{self, ResetData};
use crate::data;
use crate::device::ComputeDevice;
use crate::error::{Result, WsaError};
use crate::model::{HostParams, Params};
use crate::train::{DeviceData, evaluate};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The largest grid side: a plane costs grid² evaluations of the test set.
pub const MAX_GRID: usize = 201;

/// Each side of the grid spans at least this share of the other (unless the margin is 0, which
/// asks for the models' extremes exactly): the plane is drawn with equal scales (both axes are
/// distances in weight space), and a third model close to the line A-B would otherwise leave a
/// strip too thin to read.
pub const MIN_SIDE_SHARE: f64 = 0.25;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlaneConfig {
    /// Points per side of the grid.
    pub grid: usize,
    /// Margin around the three models on each side, as a share of their extent.
    pub margin: f64,
}

impl Default for PlaneConfig {
    fn default() -> Self {
        Self { grid: 25, margin: 0.2 }
    }
}

impl PlaneConfig {
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_GRID).contains(&self.grid) {
            return Err(WsaError::invalid(
                "plane.grid",
                self.grid,
                &format!("must be between 2 and {MAX_GRID} (the plane costs grid² evaluations)"),
            ));
        }
        if !(self.margin.is_finite() && (0.0..=5.0).contains(&self.margin)) {
            return Err(WsaError::invalid("plane.margin", self.margin, "must be between 0 and 5"));
        }
        Ok(())
    }
}

/// A named point of the plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanePoint {
    pub label: String,
    pub x: f64,
    pub y: f64,
}

/// The plane's grid and what lies on it. `loss[j * xs.len() + i]` is at (`xs[i]`, `ys[j]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plane {
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    /// Far from the models the loss can overflow: a non-finite value is written as `null` (JSON
    /// has no NaN) and read back as NaN.
    #[serde(with = "non_finite_as_null")]
    pub loss: Vec<f64>,
    #[serde(with = "non_finite_as_null")]
    pub accuracy: Vec<f64>,
    /// A, B and the third model.
    pub models: Vec<PlanePoint>,
    /// The curve through the third model (when it is a control point), on its t grid.
    pub curve: Option<(CurveKind, Vec<[f64; 2]>)>,
}

impl Plane {
    /// The lowest and highest finite test loss on the grid.
    pub fn loss_range(&self) -> (f64, f64) {
        self.loss
            .iter()
            .filter(|l| l.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &l| (low.min(l), high.max(l)))
    }

    /// ln(loss) at every grid point for a colour scale, a non-finite loss (an overflow far from
    /// the models) at the largest finite value: drawn as the worst, never as the best.
    pub fn log_loss(&self) -> Vec<f64> {
        let logs: Vec<f64> = self.loss.iter().map(|l| l.max(1e-12).ln()).collect();
        let worst = logs.iter().copied().filter(|x| x.is_finite()).fold(0.0, f64::max);
        self.loss.iter().zip(logs).map(|(l, x)| if l.is_finite() && x.is_finite() { x } else { worst }).collect()
    }

    /// The index into `loss` and `accuracy` of the grid point (`i`, `j`) (column, row).
    pub fn index(&self, i: usize, j: usize) -> Option<usize> {
        (i < self.xs.len() && j < self.ys.len()).then(|| j * self.xs.len() + i)
    }

    /// The grid point (column, row) nearest to (`x`, `y`), when that lies within half a grid
    /// step of the grid.
    pub fn nearest(&self, x: f64, y: f64) -> Option<(usize, usize)> {
        let step = |values: &[f64], at: f64| {
            let (first, last) = (*values.first()?, *values.last()?);
            let delta = (last - first) / (values.len().max(2) - 1) as f64;
            let k = ((at - first) / delta).round();
            (delta > 0.0 && (0.0..values.len() as f64).contains(&k)).then_some(k as usize)
        };
        Some((step(&self.xs, x)?, step(&self.ys, y)?))
    }

    /// The weights (w_B, w_third) that make the point (`x`, `y`) of the plane the model
    /// A + w_B (B − A) + w_third (third − A). B lies on the first axis at (b, 0) and the third
    /// model at (c_x, c_y), so y fixes w_third = y / c_y and x what is left along B. `None` for
    /// a plane without its three models.
    pub fn mix_at(&self, x: f64, y: f64) -> Option<[f64; 2]> {
        let (b, third) = (self.models.get(1)?, self.models.get(2)?);
        if b.x == 0.0 || third.y == 0.0 {
            return None;
        }
        let w_third = y / third.y;
        Some([(x - w_third * third.x) / b.x, w_third])
    }

    /// The model at the point (`x`, `y`) of this plane through `a`, `b` and `third` (the models
    /// it was computed from), e.g. to look at the weight scopes of a grid point.
    pub fn model_at(
        &self,
        (a, b, third): (&HostParams, &HostParams, &HostParams),
        x: f64,
        y: f64,
    ) -> Result<HostParams> {
        a.layout.check_compatible(&b.layout)?;
        a.layout.check_compatible(&third.layout)?;
        let [wb, wt] = self.mix_at(x, y).ok_or_else(|| {
            WsaError::invalid("plane", "its models", "are missing: the plane has no point to make a model of")
        })?;
        let values = a
            .values
            .iter()
            .zip(&b.values)
            .zip(&third.values)
            .map(|((a, b), t)| {
                a.iter()
                    .zip(b)
                    .zip(t)
                    .map(|((&a, &b), &t)| {
                        let a = f64::from(a);
                        (a + wb * (f64::from(b) - a) + wt * (f64::from(t) - a)) as f32
                    })
                    .collect()
            })
            .collect();
        Ok(HostParams { layout: a.layout.clone(), values })
    }
}

/// A plane and the third model it was computed through (a trained control point): what is
/// needed to turn any of its points into a model. Serde, so that the page's worker can post it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaneOutcome {
    pub plane: Plane,
    pub third: HostParams,
}

mod non_finite_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|v| v.is_finite().then_some(*v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        let values = Vec::<Option<f64>>::deserialize(deserializer)?;
        Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
}

/// The two spans, the shorter widened about its centre to [`MIN_SIDE_SHARE`] of the longer.
fn at_least_a_share_of_each_other(x: [f64; 2], y: [f64; 2]) -> ([f64; 2], [f64; 2]) {
    let widen = |r: [f64; 2], to: f64| {
        let (centre, half) = ((r[0] + r[1]) / 2.0, (r[1] - r[0]).max(to) / 2.0);
        [centre - half, centre + half]
    };
    let (w, h) = (x[1] - x[0], y[1] - y[0]);
    (widen(x, h * MIN_SIDE_SHARE), widen(y, w * MIN_SIDE_SHARE))
}

/// Flattened parameters in f64, for the basis and the projections.
fn flat(p: &HostParams) -> Vec<f64> {
    p.values.iter().flatten().map(|&v| f64::from(v)).collect()
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

/// The orthonormal basis (u, v) of the plane through `a`, `b` and `c`, and the coordinates of
/// `b` and `c` in it (`a` is the origin).
pub struct Basis {
    pub u: Vec<f64>,
    pub v: Vec<f64>,
    pub b: [f64; 2],
    pub c: [f64; 2],
}

impl Basis {
    pub fn new(a: &HostParams, b: &HostParams, c: &HostParams) -> Result<Self> {
        a.layout.check_compatible(&b.layout)?;
        a.layout.check_compatible(&c.layout)?;
        for p in [a, b, c] {
            p.check_finite()?;
        }
        let (fa, fb, fc) = (flat(a), flat(b), flat(c));
        let db: Vec<f64> = fb.iter().zip(&fa).map(|(x, y)| x - y).collect();
        let dc: Vec<f64> = fc.iter().zip(&fa).map(|(x, y)| x - y).collect();
        let length_b = dot(&db, &db).sqrt();
        if length_b == 0.0 {
            return Err(WsaError::invalid("plane", "A and B", "are the same model: there is no plane through them"));
        }
        let u: Vec<f64> = db.iter().map(|x| x / length_b).collect();
        let along = dot(&dc, &u);
        let mut v: Vec<f64> = dc.iter().zip(&u).map(|(x, e)| x - along * e).collect();
        let across = dot(&v, &v).sqrt();
        // Relative to the models' distance: f32 rounding leaves ~1e-7 of a collinear third model.
        if across <= 1e-6 * length_b.max(dot(&dc, &dc).sqrt()) {
            return Err(WsaError::invalid(
                "plane",
                "the third model",
                "lies on the line through A and B (e.g. their own midpoint): pick a model off it, such as a curve's control point",
            ));
        }
        v.iter_mut().for_each(|x| *x /= across);
        Ok(Self { u, v, b: [length_b, 0.0], c: [along, across] })
    }

    /// The coordinates of `p` projected on the plane (A at the origin).
    pub fn project(&self, a: &HostParams, p: &HostParams) -> [f64; 2] {
        let d: Vec<f64> = flat(p).iter().zip(flat(a)).map(|(x, y)| x - y).collect();
        [dot(&d, &self.u), dot(&d, &self.v)]
    }

    /// A basis vector as parameters on `device`, shaped as `like`.
    fn to_device(&self, axis: &[f64], like: &HostParams, device: &Device) -> Params {
        let mut offset = 0;
        let values = like
            .values
            .iter()
            .map(|t| {
                let part = axis[offset..offset + t.len()].iter().map(|&x| x as f32).collect();
                offset += t.len();
                part
            })
            .collect();
        HostParams { layout: like.layout.clone(), values }.to_device(device)
    }
}

/// `n` evenly spaced values from `low` to `high`.
fn spaced(low: f64, high: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| low + (high - low) * i as f64 / (n - 1) as f64).collect()
}

/// Evaluates the plane through `a`, `b` and `third` on `test` (a grid² evaluation, with a
/// `PathPoint` event per grid row for progress and a check for Cancel). `curve`: the third model
/// is this kind of curve's control point, whose path is then drawn on the plane. Every grid point
/// is a mix of the three models: where `reset` is given, its BatchNorm statistics are
/// re-estimated over `reset`'s batches before it is evaluated.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate_plane(
    config: &PlaneConfig,
    (a, b, third): (&HostParams, &HostParams, &HostParams),
    third_label: &str,
    curve: Option<CurveKind>,
    test: &DeviceData,
    reset: Option<&ResetData>,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Plane> {
    config.validate()?;
    let basis = Basis::new(a, b, third)?;
    let corners = [[0.0, 0.0], basis.b, basis.c];
    let (x0, x1) = corners.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p[0]), h.max(p[0])));
    let (y0, y1) = corners.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p[1]), h.max(p[1])));
    let (mx, my) = ((x1 - x0) * config.margin, (y1 - y0) * config.margin);
    let (x_span, y_span) = match config.margin {
        0.0 => ([x0, x1], [y0, y1]),
        _ => at_least_a_share_of_each_other([x0 - mx, x1 + mx], [y0 - my, y1 + my]),
    };
    let xs = spaced(x_span[0], x_span[1], config.grid);
    let ys = spaced(y_span[0], y_span[1], config.grid);
    let origin = a.to_device(device);
    let (u, v) = (basis.to_device(&basis.u, a, device), basis.to_device(&basis.v, a, device));
    let mut loss = Vec::with_capacity(xs.len() * ys.len());
    let mut accuracy = Vec::with_capacity(xs.len() * ys.len());
    for (row, &y) in ys.iter().enumerate() {
        for &x in &xs {
            if observer.is_cancelled() {
                return Err(WsaError::Cancelled);
            }
            let tensors: Vec<Tensor<1>> = origin
                .tensors
                .iter()
                .zip(&u.tensors)
                .zip(&v.tensors)
                .map(|((o, du), dv)| o.clone() + du.clone() * x + dv.clone() * y)
                .collect();
            let m = match reset {
                None => evaluate(&origin.layout, &tensors, test).await?,
                Some(data) => {
                    let at = batch_norm::reset(&Params { layout: Arc::clone(&origin.layout), tensors }, data).await?;
                    evaluate(&at.layout, &at.tensors, test).await?
                }
            };
            loss.push(m.loss);
            accuracy.push(m.accuracy);
            observer.pause().await;
        }
        observer.on_event(&Event::PlaneRow { row, rows: ys.len() });
    }
    let curve = curve.map(|kind| {
        // φ(t) − A = w_θ (θ − A) + w_B (B − A): its coordinates are the same mix of θ's and B's.
        let path = spaced(0.0, 1.0, 41)
            .into_iter()
            .map(|t| {
                let [_, wt, wb] = kind.weights(t);
                [wt * basis.c[0] + wb * basis.b[0], wt * basis.c[1] + wb * basis.b[1]]
            })
            .collect();
        (kind, path)
    });
    let point = |label: &str, [x, y]: [f64; 2]| PlanePoint { label: label.to_string(), x, y };
    Ok(Plane {
        models: vec![point("A", [0.0, 0.0]), point("B", basis.b), point(third_label, basis.c)],
        xs,
        ys,
        loss,
        accuracy,
        curve,
    })
}

/// The plane through a trained pair's A and B and the control point of a curve (the config's
/// `curve`, Bezier by default) trained between them on the config's training data: what
/// `wsa-lab plane` and the app's Plane view compute, with the trained control point.
pub async fn through_curve(
    config: &ConnectConfig,
    pair: &TrainedPair,
    plane: &PlaneConfig,
    device: &ComputeDevice,
    observer: &mut dyn Observer,
) -> Result<PlaneOutcome> {
    plane.validate()?;
    let curve = config.curve.clone().unwrap_or_default();
    let split = data::load(&config.data, config.seed)?;
    let dev = &device.device;
    let (train, test) = (DeviceData::upload(&split.train, dev), DeviceData::upload(&split.test, dev));
    let (a, b) = (pair.a.to_device(dev), pair.b.to_device(dev));
    observer.on_event(&Event::Stage(format!(
        "{}: training a {} curve between A and B",
        pair.method,
        curve.kind.name()
    )));
    let theta = train_control_point(&curve, config.train.batch_size, &a, &b, &train, config.seed, observer).await?;
    let theta = theta.to_host().await?;
    let label = format!("θ ({} control point)", curve.kind.name());
    let reset = config.batch_norm_reset(&pair.a.layout, &split.train, dev);
    let models = (&pair.a, &pair.b, &theta);
    let plane = evaluate_plane(plane, models, &label, Some(curve.kind), &test, reset.as_ref(), dev, observer).await?;
    Ok(PlaneOutcome { plane, third: theta })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, ModelLayout};
    use crate::rng::Rng;

    fn model(seed: u64) -> HostParams {
        let layout = Arc::new(ModelLayout::new(&ModelConfig::mlp(vec![8]), &[4], 3).expect("layout"));
        layout.init(&mut Rng::new(seed))
    }

    #[test]
    fn a_thin_grid_is_widened_about_its_centre_to_a_quarter_of_the_other_side() {
        let (x, y) = at_least_a_share_of_each_other([-5.0, 30.0], [-0.4, 2.4]);
        assert_eq!(x, [-5.0, 30.0], "the longer side stays");
        assert!((y[1] - y[0] - 35.0 * MIN_SIDE_SHARE).abs() < 1e-12 && (y[0] + y[1] - 2.0).abs() < 1e-12, "{y:?}");
        let (x, y) = at_least_a_share_of_each_other([0.0, 1.0], [-10.0, 10.0]);
        assert!((x[1] - x[0] - 20.0 * MIN_SIDE_SHARE).abs() < 1e-12 && (x[0] + x[1] - 1.0).abs() < 1e-12, "{x:?}");
        assert_eq!(y, [-10.0, 10.0]);
        let square = ([0.0, 4.0], [1.0, 4.0]);
        assert_eq!(at_least_a_share_of_each_other(square.0, square.1), square, "wide enough already");
    }

    #[test]
    fn the_basis_is_orthonormal_and_projects_the_models_where_they_are() {
        let (a, b, c) = (model(1), model(2), model(3));
        let basis = Basis::new(&a, &b, &c).expect("a plane");
        assert!((dot(&basis.u, &basis.u) - 1.0).abs() < 1e-9);
        assert!((dot(&basis.v, &basis.v) - 1.0).abs() < 1e-9);
        assert!(dot(&basis.u, &basis.v).abs() < 1e-9);
        for (p, expected) in [(&a, [0.0, 0.0]), (&b, basis.b), (&c, basis.c)] {
            let at = basis.project(&a, p);
            assert!((at[0] - expected[0]).abs() < 1e-6 && (at[1] - expected[1]).abs() < 1e-6, "{at:?} vs {expected:?}");
        }
        assert!(basis.b[0] > 0.0 && basis.c[1] > 0.0);
    }

    #[test]
    fn every_point_of_the_plane_is_a_model_that_projects_back_onto_it() {
        let (a, b, c) = (model(1), model(2), model(3));
        let basis = Basis::new(&a, &b, &c).expect("a plane");
        let point = |label: &str, [x, y]: [f64; 2]| PlanePoint { label: label.into(), x, y };
        let plane = Plane {
            xs: Vec::new(),
            ys: Vec::new(),
            loss: Vec::new(),
            accuracy: Vec::new(),
            models: vec![point("A", [0.0, 0.0]), point("B", basis.b), point("C", basis.c)],
            curve: None,
        };
        let close = |p: &HostParams, q: &HostParams| {
            p.values.iter().flatten().zip(q.values.iter().flatten()).all(|(x, y)| (x - y).abs() < 1e-5)
        };
        let models = (&a, &b, &c);
        assert!(close(&plane.model_at(models, 0.0, 0.0).expect("A"), &a));
        assert!(close(&plane.model_at(models, basis.b[0], basis.b[1]).expect("B"), &b));
        assert!(close(&plane.model_at(models, basis.c[0], basis.c[1]).expect("C"), &c));
        for at in [[0.3, -0.7], [-1.5, 2.0], [basis.b[0] * 1.2, basis.c[1] * 0.4]] {
            let m = plane.model_at(models, at[0], at[1]).expect("a point");
            let back = basis.project(&a, &m);
            assert!((back[0] - at[0]).abs() < 1e-4 && (back[1] - at[1]).abs() < 1e-4, "{back:?} vs {at:?}");
        }
        let grid = Plane { xs: spaced(-1.0, 1.0, 5), ys: spaced(0.0, 2.0, 3), ..plane.clone() };
        assert_eq!(grid.nearest(0.4, 1.1), Some((3, 1)));
        assert_eq!(grid.nearest(-1.2, 0.2), Some((0, 0)), "within half a step of the grid");
        assert_eq!(grid.nearest(1.3, 1.0), None, "beyond half a step");
        assert_eq!((grid.index(4, 2), grid.index(5, 0)), (Some(14), None));
        let lacking = Plane { models: plane.models[..2].to_vec(), ..plane.clone() };
        assert!(lacking.model_at(models, 0.1, 0.1).is_err(), "a plane without its third model");
    }

    #[test]
    fn a_degenerate_plane_is_refused_with_the_reason() {
        let (a, b) = (model(1), model(2));
        let mid = HostParams {
            layout: a.layout.clone(),
            values: a
                .values
                .iter()
                .zip(&b.values)
                .map(|(x, y)| x.iter().zip(y).map(|(p, q)| 0.5 * (p + q)).collect())
                .collect(),
        };
        let err = Basis::new(&a, &b, &mid).err().expect("collinear");
        assert!(err.to_string().contains("lies on the line through A and B"), "{err}");
        let err = Basis::new(&a, &a, &b).err().expect("A = B");
        assert!(err.to_string().contains("same model"), "{err}");
        let other = {
            let layout = Arc::new(ModelLayout::new(&ModelConfig::mlp(vec![9]), &[4], 3).expect("layout"));
            layout.init(&mut Rng::new(4))
        };
        assert!(Basis::new(&a, &b, &other).is_err(), "another architecture");
        // An overflowed grid point is drawn as the worst, not the best.
        let plane = Plane {
            xs: vec![0.0, 1.0],
            ys: vec![0.0],
            loss: vec![f64::NAN, 2.0],
            accuracy: vec![0.0, 0.5],
            models: Vec::new(),
            curve: None,
        };
        assert_eq!(plane.log_loss(), vec![2f64.ln(), 2f64.ln()]);
        assert_eq!(plane.loss_range(), (2.0, 2.0));
        for grid in [0, 1, MAX_GRID + 1] {
            let err = PlaneConfig { grid, ..Default::default() }.validate().expect_err("bad grid");
            assert!(err.to_string().contains("plane.grid"), "{err}");
        }
    }
}
