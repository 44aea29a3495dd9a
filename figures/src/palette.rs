//! Every colour WSA Lab draws with: the figures (on screen and in the exported PNGs, so a
//! method looks the same on screen and on paper) and the app's marks, warnings and errors.

use wsa_core::experiment::connect::Endpoint;
use wsa_core::experiment::method::{Alignment, Method, Training};

/// An sRGB colour.
pub type Rgb = [u8; 3];

// The figures' colours are Okabe and Ito's colour-blind-safe set (orange, sky blue, bluish
// green, blue, vermillion, reddish purple, black) with a few darker tones beside it: every pair
// drawn together stays apart under deuteranopia and protanopia (the test below simulates both).

pub const MODEL_A: Rgb = [230, 159, 0];
pub const MODEL_B: Rgb = [0, 114, 178];

pub fn endpoint(endpoint: Endpoint) -> Rgb {
    match endpoint {
        Endpoint::A => MODEL_A,
        Endpoint::B => MODEL_B,
    }
}

/// The merged model (a point on the path).
pub const MERGED: Rgb = [204, 121, 167];
/// The target Gaussian.
pub const TARGET: Rgb = [90, 90, 90];
/// B before it was aligned to A (drawn dashed): a lighter blue beside B's.
pub const B_UNALIGNED: Rgb = [86, 180, 233];

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

const VERMILLION: Rgb = [213, 94, 0];
const BLUE: Rgb = [0, 114, 178];
const BLUISH_GREEN: Rgb = [0, 158, 115];
const REDDISH_PURPLE: Rgb = [204, 121, 167];

/// The federated runs of a comparison (FedAvg, FedAvg+WSA, FedProx, FedProx+WSA), in order: the
/// colours of plain, WSA, weight matching and both, so that "+WSA" reads alike everywhere.
pub const RUNS: [Rgb; 4] = [VERMILLION, BLUE, BLUISH_GREEN, REDDISH_PURPLE];

/// One fixed colour per method, so that toggling methods never recolours the others.
pub fn method(m: Method) -> Rgb {
    match (m.alignment, m.training, m.repair) {
        (Alignment::None, Training::Plain, false) => VERMILLION,
        (Alignment::None, Training::Wsa, false) => BLUE,
        (Alignment::WeightMatching, Training::Plain, false) => BLUISH_GREEN,
        (Alignment::WeightMatching, Training::Wsa, false) => REDDISH_PURPLE,
        (Alignment::Rescale, Training::Plain, _) => [140, 80, 30],
        (Alignment::Rescale, Training::Wsa, _) => [20, 40, 110],
        (Alignment::None, Training::Plain, true) => [230, 159, 0],
        (Alignment::None, Training::Wsa, true) => [86, 180, 233],
        (Alignment::WeightMatching, Training::Plain, true) => [70, 70, 70],
        (Alignment::WeightMatching, Training::Wsa, true) => [0, 0, 0],
    }
}

/// The shape of a mark in a figure where each method or run is a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Shape {
    #[default]
    Circle,
    Square,
    TriangleUp,
    Diamond,
    TriangleDown,
}

/// How a method's or a run's points are drawn, beside its colour: small marks of near colours
/// (plain's vermillion and rescaling's brown, the dark grey and the black of the two
/// weight-matching REPAIR methods) are hard to tell apart on a projector or in print, whatever
/// their colour difference, so no two methods share a mark: they differ in shape or in fill. The
/// shape says what was done to the trained pair before merging, an open mark that the pair was
/// trained with WSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Mark {
    pub shape: Shape,
    pub open: bool,
}

/// `m`'s mark: circles for no alignment, squares for weight matching, upward triangles for
/// rescaling, diamonds for REPAIR alone, downward triangles for weight matching with REPAIR;
/// open where the pair was trained with WSA.
pub fn method_mark(m: Method) -> Mark {
    let shape = match (m.alignment, m.repair) {
        (Alignment::None, false) => Shape::Circle,
        (Alignment::WeightMatching, false) => Shape::Square,
        (Alignment::Rescale, _) => Shape::TriangleUp,
        (Alignment::None, true) => Shape::Diamond,
        (Alignment::WeightMatching, true) => Shape::TriangleDown,
    };
    Mark { shape, open: m.training == Training::Wsa }
}

/// The marks of variants that are not methods (federated runs, initialisations), in the order
/// drawn: a name ending in "+wsa" was trained with WSA and is open, every other filled; each name
/// without the suffix takes the next shape in turn, and a "+wsa" name its base's shape (FedAvg+WSA
/// an open FedAvg circle, in whichever order they come), or a shape of its own where its base is
/// not drawn.
pub fn variant_marks(names: &[&str]) -> Vec<Mark> {
    const SHAPES: [Shape; 5] = [Shape::Circle, Shape::Square, Shape::TriangleUp, Shape::Diamond, Shape::TriangleDown];
    let base_of = |name: &'_ str| -> String { name.strip_suffix("+wsa").unwrap_or(name).to_string() };
    // The distinct base names in the order they first come: each one shape.
    let mut bases: Vec<String> = Vec::new();
    for name in names {
        let base = base_of(name);
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    names
        .iter()
        .map(|name| {
            let shape_index = bases.iter().position(|b| *b == base_of(name)).unwrap_or(0);
            Mark { shape: SHAPES[shape_index % SHAPES.len()], open: name.ends_with("+wsa") }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest colour difference (CIE76 ΔE in CIELAB) allowed between two colours drawn
    /// side by side, for every viewer: 15 is about where two thin lines stop being confused; the
    /// old palette's plain and rescale were 2.6 apart under deuteranopia.
    const MIN_DELTA_E: f64 = 15.0;

    /// Machado, Oliveira and Fernandes (2009), severity 1, on linear RGB: what a viewer with
    /// deuteranopia or protanopia sees; and the identity for everyone else.
    const VIEWERS: [(&str, [[f64; 3]; 3]); 3] = [
        ("typical vision", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        (
            "deuteranopia",
            [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
        ),
        (
            "protanopia",
            [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
        ),
    ];

    /// `color` as `viewer` sees it, in CIELAB (D65).
    fn lab(color: Rgb, viewer: &[[f64; 3]; 3]) -> [f64; 3] {
        let linear = color.map(|c| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        });
        let seen: Vec<f64> =
            viewer.iter().map(|row| row.iter().zip(&linear).map(|(m, c)| m * c).sum::<f64>().clamp(0.0, 1.0)).collect();
        let (r, g, b) = (seen[0], seen[1], seen[2]);
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        let f = |t: f64| if t > 216.0 / 24389.0 { t.cbrt() } else { (24389.0 / 27.0 * t + 16.0) / 116.0 };
        [116.0 * f(y) - 16.0, 500.0 * (f(x) - f(y)), 200.0 * (f(y) - f(z))]
    }

    /// Every pair of `colors` at least MIN_DELTA_E apart for every viewer.
    fn assert_apart(what: &str, colors: &[(String, Rgb)]) {
        for (name, viewer) in &VIEWERS {
            for (i, (a, ca)) in colors.iter().enumerate() {
                for (b, cb) in &colors[i + 1..] {
                    let (la, lb) = (lab(*ca, viewer), lab(*cb, viewer));
                    let delta = la.iter().zip(&lb).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
                    assert!(delta >= MIN_DELTA_E, "{what}: {a} and {b} are {delta:.1} apart under {name}");
                }
            }
        }
    }

    #[test]
    fn colours_drawn_together_stay_apart_under_colour_vision_deficiencies() {
        let mut methods = Vec::new();
        for alignment in Alignment::ALL {
            for training in Training::ALL {
                for repair in [false, true] {
                    // Rescaling does not combine with REPAIR: one colour for both.
                    if !(alignment == Alignment::Rescale && repair) {
                        let m = Method { alignment, training, repair };
                        methods.push((m.to_string(), method(m)));
                    }
                }
            }
        }
        assert_eq!(methods.len(), 10);
        assert_apart("methods", &methods);
        let runs = ["FedAvg", "FedAvg+WSA", "FedProx", "FedProx+WSA"];
        assert_apart("federated runs", &runs.iter().map(|r| r.to_string()).zip(RUNS).collect::<Vec<_>>());
        let models = [
            ("A", MODEL_A),
            ("B", MODEL_B),
            ("B before alignment", B_UNALIGNED),
            ("merged", MERGED),
            ("target", TARGET),
        ];
        assert_apart("a layer's histograms", &models.map(|(n, c)| (n.to_string(), c)));
    }

    #[test]
    fn no_two_methods_share_a_mark_and_wsa_marks_are_open() {
        let marks: std::collections::HashSet<Mark> = Method::ALL.iter().map(|&m| method_mark(m)).collect();
        assert_eq!(marks.len(), Method::ALL.len(), "two methods share a mark");
        for m in Method::ALL {
            assert_eq!(method_mark(m).open, m.training == Training::Wsa, "{m}");
        }
    }

    #[test]
    fn a_run_with_wsa_takes_its_bases_shape_open_in_any_order() {
        let mark = |shape, open| Mark { shape, open };
        let (circle, square, up) = (Shape::Circle, Shape::Square, Shape::TriangleUp);
        assert_eq!(
            variant_marks(&["fedavg", "fedavg+wsa", "fedprox", "fedprox+wsa"]),
            [mark(circle, false), mark(circle, true), mark(square, false), mark(square, true)]
        );
        assert_eq!(
            variant_marks(&["fedavg+wsa", "fedavg", "fedprox+wsa"]),
            [mark(circle, true), mark(circle, false), mark(square, true)]
        );
        assert_eq!(
            variant_marks(&["init", "trained", "x"]),
            [mark(circle, false), mark(square, false), mark(up, false)]
        );
    }
}
