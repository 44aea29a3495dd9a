//! The Python package (`python/`, built and installed by `scripts/python-wheel.sh`) against the
//! engine: every scope, fusion, KL, penalty value and gradient it gives equals, bit for bit, what
//! `wsa-core`'s own functions give on the same float32 layers; its refusals name the problem;
//! docs/python.md's examples and the package's docstring run as written.

use burn::tensor::{Device, Tensor, TensorData};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wsa_core::rng::Rng;
use wsa_core::scope::{FusionRule, Scope, fuse, kl_gaussian, scope_of};
use wsa_core::wsa::{KlDirection, LayerReduction, WsaConfig};
#[path = "../../tests/temp_dir.rs"]
mod temp_dir;
use temp_dir::temp_dir;

/// The Python with the `wsa_lab` wheel installed (`.ci/run` installs it into the Flower venv). The
/// wheel is the one last built: after a change to `python/` or the engine, build it again
/// (`scripts/python-wheel.sh PYTHON`) before these tests, which would compare the old one.
fn python() -> String {
    std::env::var("WSA_LAB_PYTHON").expect(
        "WSA_LAB_PYTHON names a Python with the wsa_lab wheel installed (scripts/python-wheel.sh PYTHON installs it)",
    )
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Three models of three layers (a matrix, a bias-sized vector, a convolution kernel), each
/// model with its own mean and spread, as float32.
fn models() -> Vec<Vec<(Vec<usize>, Vec<f32>)>> {
    let mut rng = Rng::new(29);
    let shapes: [&[usize]; 3] = [&[16, 8], &[8], &[4, 3, 3, 3]];
    (0..3)
        .map(|k| {
            shapes
                .iter()
                .map(|shape| {
                    let n = shape.iter().product();
                    let (offset, spread) = (0.02 * k as f64 - 0.01, 0.05 * (k + 1) as f64);
                    let values = (0..n).map(|_| (offset + spread * rng.normal()) as f32).collect();
                    (shape.to_vec(), values)
                })
                .collect()
        })
        .collect()
}

fn pair(value: &serde_json::Value) -> Scope {
    let number = |i: usize| value[i].as_f64().expect("a number");
    Scope { mean: number(0), std: number(1) }
}

fn scopes(value: &serde_json::Value) -> Vec<Scope> {
    value.as_array().expect("a list").iter().map(pair).collect()
}

/// Bit for bit: the same f64 (`==` on finite numbers, and both are printed and read exactly).
fn assert_same_scopes(what: &str, ours: &[Scope], engine: &[Scope]) {
    assert_eq!(ours.len(), engine.len(), "{what}");
    for (l, (a, b)) in ours.iter().zip(engine).enumerate() {
        assert!(
            a.mean.to_bits() == b.mean.to_bits() && a.std.to_bits() == b.std.to_bits(),
            "{what} layer {l}: {a:?} vs {b:?}"
        );
    }
}

#[test]
#[ignore = "needs the wsa_lab wheel installed (WSA_LAB_PYTHON); CI runs it (.ci/run builds it with maturin)"]
fn the_python_package_gives_the_engines_numbers_bit_for_bit_and_refuses_bad_input() {
    let dir = temp_dir("engine");
    let models = models();
    let weights = [3.0, 1.0, 2.0];
    let lambda = 0.7;
    let mut files = Vec::new();
    for (k, layers) in models.iter().enumerate() {
        let mut listed = Vec::new();
        for (l, (shape, values)) in layers.iter().enumerate() {
            let file = format!("model {k} layer {l}.f32");
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(&file), bytes).expect("write a layer");
            listed.push(serde_json::json!({"file": file, "shape": shape}));
        }
        files.push(listed);
    }
    let spec = serde_json::json!({"models": files, "weights": weights, "lambda": lambda});
    std::fs::write(dir.join("layers.json"), spec.to_string()).expect("write layers.json");
    let run = Command::new(python())
        .arg(root().join("python/tests/engine_numbers.py"))
        .arg(&dir)
        .output()
        .expect("run engine_numbers.py");
    assert!(run.status.success(), "{}", text(&run));
    let out: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");

    let engine_scopes: Vec<Vec<Scope>> =
        models.iter().map(|layers| layers.iter().map(|(_, values)| scope_of(values)).collect()).collect();
    for (k, engine) in engine_scopes.iter().enumerate() {
        assert_same_scopes(&format!("scope of model {k}"), &scopes(&out["scopes"][k]), engine);
    }
    assert_same_scopes("a float64 array's scope", &[pair(&out["scope_of_float64"])], &engine_scopes[0][..1]);
    for rule in FusionRule::ALL {
        let engine = fuse(&engine_scopes, &weights, rule).expect("fuse");
        assert_same_scopes(&format!("fused by {}", rule.name()), &scopes(&out["fused"][rule.name()]), &engine);
    }
    let equal = fuse(&engine_scopes, &[1.0; 3], FusionRule::default()).expect("fuse");
    assert_same_scopes("fused with equal shares", &scopes(&out["fused_equal_weights"]), &equal);
    let kl = kl_gaussian(engine_scopes[0][0], engine_scopes[1][0]);
    assert_eq!(out["kl"].as_f64().map(f64::to_bits), Some(kl.to_bits()), "KL: {} vs {kl}", out["kl"]);

    let target = fuse(&engine_scopes, &weights, FusionRule::MomentMatching).expect("fuse");
    let device = Device::flex();
    let params: Vec<Tensor<1>> = models[0]
        .iter()
        .map(|(_, values)| Tensor::<1>::from_data(TensorData::new(values.clone(), [values.len()]), &device))
        .collect();
    for direction in KlDirection::ALL {
        for reduction in LayerReduction::ALL {
            let config = WsaConfig { direction, reduction, ..WsaConfig::default() };
            let term = config.term(lambda, &[0, 1, 2], &target);
            let closed = term.closed_form(&params).expect("three layers");
            let name = format!("{} {}", direction.name(), reduction.name());
            let value: f32 = closed.value.into_scalar();
            assert_eq!(out["penalty"][&name].as_f64(), Some(f64::from(value)), "{name}: penalty");
            for (l, gradient) in closed.gradients.into_iter().enumerate() {
                let engine: Vec<f32> = gradient.into_data().try_to_vec().expect("f32");
                let engine: Vec<u8> = engine.iter().flat_map(|v| v.to_le_bytes()).collect();
                let ours = std::fs::read(dir.join(format!("gradient {name} {l}.f32"))).expect("read a gradient");
                assert!(ours == engine, "{name}: layer {l}'s gradient differs from the engine's");
            }
        }
    }

    for (layout, same) in out["same_scope_other_layouts"].as_object().expect("layouts") {
        assert_eq!(same.as_bool(), Some(true), "{layout}: another layout of the same values gave another scope");
    }

    let refusals = [
        ("nan", "ValueError: the array holds NaN at flat index 5; weights must be finite numbers"),
        ("empty", "ValueError: the array has no values"),
        ("text", "TypeError: the array holds <U7 values; pass an array of real numbers"),
        ("complex", "TypeError: the array holds complex numbers; pass an array of real numbers"),
        ("masked", "TypeError: the array is a masked array; pass its values"),
        ("none inside", "TypeError: the array holds object values"),
        ("beyond float32", "ValueError: the array holds 1e+300 at flat index 1, beyond float32's range"),
        (
            "unknown rule",
            "ValueError: rule = `median`: unknown fusion rule; choose one of moment-matching, plain-average",
        ),
        ("rule not text", "TypeError: rule is None; pass one of moment-matching"),
        ("infinite share", "ValueError: weights = [1.0, inf, 1.0]: must be finite, >= 0, and not all zero"),
        ("a weight short", "ValueError: 2 weight(s) for 3 model(s); pass one weight per model"),
        ("a layer short", "ValueError: model 1 has 2 layer scope(s) and model 0 has 3"),
        ("no models", "ValueError: no models' scopes to fuse; pass a list with each model's list of layer scopes"),
        ("negative std", "a scope needs a finite mean and a finite std >= 0"),
        ("not a scope", "TypeError: the first scope is 3; a scope is a (mean, std) pair"),
        ("one array as layers", "TypeError: layers is one ndarray; pass a list of arrays, e.g. [w]"),
        ("no targets", "TypeError: targets is None; pass a list of scopes"),
        ("lam not a number", "TypeError: lam is 'strong'; pass a number"),
        ("target beyond float32", "ValueError: layer 0's target is (mean 0, std 1e39), beyond float32's range"),
        ("penalty overflows", "ValueError: the penalty came out"),
        ("a target short", "3 layer(s) and 2 target scope(s)"),
        ("negative lambda", "ValueError: lam = -1: must be a finite number in [0, 10000]"),
        (
            "unknown direction",
            "ValueError: direction = `both`: unknown KL direction; choose model-to-target or target-to-model",
        ),
    ];
    for (case, words) in refusals {
        let said = out["errors"][case].as_str().unwrap_or("nothing");
        assert!(said.contains(words), "{case}: {said}");
    }
}

/// The ```python blocks of docs/python.md that need only NumPy (the PyTorch one is for readers
/// with torch installed), and the package docstring's example, run as a reader would run them.
#[test]
#[ignore = "needs the wsa_lab wheel installed (WSA_LAB_PYTHON); CI runs it (.ci/run builds it with maturin)"]
fn the_documented_python_examples_run() {
    let page = std::fs::read_to_string(root().join("docs/python.md")).expect("read docs/python.md");
    let blocks: Vec<&str> = page.split("```python\n").skip(1).filter_map(|rest| rest.split("\n```").next()).collect();
    let numpy_only: Vec<&&str> = blocks.iter().filter(|code| !code.contains("import torch")).collect();
    assert!(!numpy_only.is_empty() && numpy_only.len() < blocks.len(), "docs/python.md: {} blocks", blocks.len());
    for code in numpy_only {
        let run = Command::new(python()).args(["-c", code]).output().expect("run an example");
        assert!(run.status.success(), "this example of docs/python.md failed:\n{code}\n{}", text(&run));
    }
    let doctest = "import doctest, wsa_lab\nr = doctest.testmod(wsa_lab)\nassert r.attempted > 0 and r.failed == 0, r";
    let run = Command::new(python()).args(["-c", doctest]).output().expect("run the docstring's example");
    assert!(run.status.success(), "the docstring's example:\n{}", text(&run));
}
