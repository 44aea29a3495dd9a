//! Every colour WSA Lab draws with: the figures (on screen and in the exported PNGs, so a
//! method looks the same on screen and on paper) and the app's marks, warnings and errors.

use wsa_core::experiment::connect::Endpoint;
use wsa_core::experiment::method::{Alignment, Method, Training};

/// An sRGB colour.
pub type Rgb = [u8; 3];

pub const MODEL_A: Rgb = [230, 140, 20];
pub const MODEL_B: Rgb = [40, 150, 90];
pub fn endpoint(endpoint: Endpoint) -> Rgb {
    match endpoint {
        Endpoint::A => MODEL_A,
        Endpoint::B => MODEL_B,
    }
}

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

/// The heat map's colour scale (viridis-like): dark blue (low) through teal and green to yellow
/// (high), evenly spaced.
pub const SEQUENTIAL: [Rgb; 5] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/// What is drawn over the heat map (the line A-B, the curve, the models and their names).
pub const ON_HEATMAP: Rgb = [255, 255, 255];
/// The grid point selected on the plane.
pub const SELECTED_POINT: Rgb = [255, 80, 80];
/// The selected α on the path.
pub const SELECTED_ALPHA: Rgb = [160, 160, 160];
/// The figures' light grid lines.
pub const GRID: Rgb = [235, 235, 235];
/// Text and frames on white.
pub const INK: Rgb = [0, 0, 0];
/// A figure's background.
pub const PAPER: Rgb = [255, 255, 255];

/// How strongly a seed band is filled (its method's colour at this opacity).
pub const BAND_OPACITY: f32 = 0.2;
/// How strongly what is left out (a client that does not take part) is drawn.
pub const FADED_OPACITY: f32 = 0.3;

/// A tour step's "look here" mark.
pub const MARK: Rgb = [230, 120, 20];
/// A claim held / not held, an error, a warning.
pub const HELD: Rgb = [40, 150, 60];
pub const NOT_HELD: Rgb = [200, 60, 40];
pub const ERROR: Rgb = [200, 40, 40];
pub const WARNING: Rgb = [200, 120, 40];

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
