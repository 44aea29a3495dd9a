//! The colours of every figure: the app's plots and the exported PNGs use the same ones, so a
//! method looks the same on screen and on paper.

use wsa_core::experiment::method::{Alignment, Method, Training};

/// An sRGB colour.
pub type Rgb = [u8; 3];

pub const MODEL_A: Rgb = [230, 140, 20];
pub const MODEL_B: Rgb = [40, 150, 90];
/// The merged model (a point on the path).
pub const MERGED: Rgb = [150, 80, 200];
/// The target Gaussian.
pub const TARGET: Rgb = [90, 90, 90];
/// B before it was aligned to A.
pub const B_UNALIGNED: Rgb = [150, 150, 150];

/// One colour per class (up to 10), for decision regions and label distributions.
pub const CLASSES: [Rgb; 10] = [
    [230, 120, 90],
    [90, 140, 220],
    [110, 190, 110],
    [220, 190, 80],
    [170, 110, 200],
    [90, 200, 200],
    [220, 110, 170],
    [150, 150, 150],
    [160, 120, 70],
    [60, 90, 120],
];

/// The federated runs of a comparison (FedAvg, FedAvg+WSA, FedProx, FedProx+WSA), in order.
pub const RUNS: [Rgb; 4] = [[200, 60, 50], [40, 100, 200], MODEL_A, MODEL_B];

/// One fixed colour per method, so that toggling methods never recolours the others.
pub fn method(m: Method) -> Rgb {
    match (m.alignment, m.training, m.repair) {
        (Alignment::None, Training::Plain, false) => [200, 60, 50],
        (Alignment::None, Training::Wsa, false) => [40, 100, 200],
        (Alignment::WeightMatching, Training::Plain, false) => [0, 150, 140],
        (Alignment::WeightMatching, Training::Wsa, false) => [120, 50, 160],
        (Alignment::Rescale, Training::Plain, _) => [150, 115, 50],
        (Alignment::Rescale, Training::Wsa, _) => [210, 100, 170],
        (Alignment::None, Training::Plain, true) => [230, 159, 0],
        (Alignment::None, Training::Wsa, true) => [86, 180, 233],
        (Alignment::WeightMatching, Training::Plain, true) => [110, 110, 110],
        (Alignment::WeightMatching, Training::Wsa, true) => [20, 20, 20],
    }
}
