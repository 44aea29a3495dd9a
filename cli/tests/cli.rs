//! The real `wsa-lab` binary, run as a user would.

use std::path::Path;
use std::process::Command;

fn wsa_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsa-lab"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wsa-lab-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

#[test]
fn connect_prints_the_table_and_writes_every_file() {
    let dir = temp_dir("connect");
    let out = dir.join("out");
    let config_path = dir.join("config.json");
    let printed = wsa_lab()
        .args(["connect", "--print-config", "--epochs", "2", "--max-train", "400", "--methods", "plain,wsa,wm,rescale"])
        .output()
        .expect("run");
    assert!(printed.status.success());
    std::fs::write(&config_path, &printed.stdout).expect("write config");

    let run = wsa_lab()
        .args(["connect", "--device", "cpu", "--seed", "3", "--config"])
        .arg(&config_path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("device: CPU"), "{stderr}");
    for header in ["method", "loss barrier", "acc barrier", "scope dist"] {
        assert!(stdout.contains(header), "missing `{header}` in\n{stdout}");
    }
    for method in ["plain ", "wsa ", "wm ", "rescale "] {
        assert_eq!(stdout.lines().filter(|l| l.starts_with(method)).count(), 1, "one `{method}` row in\n{stdout}");
    }
    for file in [
        "summary.json",
        "config.json",
        "paths.csv",
        "layers.csv",
        "curves.csv",
        "paths.png",
        "histograms-plain.png",
        "histograms-wsa.png",
        "histograms-wm.png",
        "histograms-rescale.png",
        "models/plain-a.safetensors",
        "models/wsa-b.safetensors",
        "models/wm-b.safetensors",
        "models/rescale-a.safetensors",
    ] {
        let path = out.join(file);
        assert!(path.is_file() && std::fs::metadata(&path).expect("meta").len() > 100, "{file} missing or empty");
    }
    let png = std::fs::read(out.join("paths.png")).expect("png");
    assert_eq!(&png[1..4], b"PNG");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("read")).expect("json");
    assert_eq!(summary["config"]["seed"], 3);
    let names: Vec<&str> =
        summary["methods"].as_array().expect("methods").iter().filter_map(|m| m["name"].as_str()).collect();
    assert_eq!(names, ["plain", "wsa", "wm", "rescale"]);
    assert_eq!(summary["methods"][2]["alignment"]["kind"], "weight-matching");
    assert_eq!(summary["pairs"].as_array().map(Vec::len), Some(2), "wm and rescale reuse the plain pair");
    assert_eq!(summary["config"]["train"]["epochs"], 2);
    let csv = std::fs::read_to_string(out.join("paths.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 1 + 4 * 21);
    // The written config runs again as it is.
    let again =
        wsa_lab().args(["connect", "--print-config", "--config"]).arg(out.join("config.json")).output().expect("run");
    assert!(again.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_exits_with_a_clear_message_and_no_output() {
    let dir = temp_dir("bad");
    let out = dir.join("out");
    let missing = wsa_lab()
        .args(["connect", "--device", "cpu", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent/wsa"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("scripts/fetch-data.sh"), "{stderr}");
    assert!(!Path::new(&out).exists(), "no output folder for a failed run");

    let bad_config = dir.join("bad.json");
    std::fs::write(&bad_config, "{\"version\": 1, \"train\": {\"batch_size\": 0}}").expect("write");
    let refused = wsa_lab().args(["connect", "--device", "cpu", "--config"]).arg(&bad_config).output().expect("run");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("train.batch_size"));

    let unknown = wsa_lab().args(["connect", "--dataset", "cifar-10", "--print-config"]).output().expect("run");
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown"));

    for (flag, value, expected) in [
        ("--methods", "plain,wm,wsm", "`wsm`"),
        ("--methods", "wm,wm", "listed twice"),
        ("--methods", ",", "at least one method"),
        ("--pair", "different-seeds", "different-init"),
    ] {
        let refused = wsa_lab().args(["connect", flag, value, "--print-config"]).output().expect("run");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{flag} {value}");
        assert!(stderr.contains(flag) && stderr.contains(expected), "{flag} {value}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn fed_compare_prints_four_methods_and_writes_its_files() {
    let dir = temp_dir("fed");
    let out = dir.join("out");
    let run = wsa_lab()
        .args(["fed", "--device", "cpu", "--clients", "3", "--rounds", "2", "--local-epochs", "1", "--compare"])
        .args(["--target-accuracy", "0.5", "--out"])
        .arg(&out)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    for method in ["fedavg ", "fedavg+wsa", "fedprox ", "fedprox+wsa"] {
        assert!(stdout.lines().any(|l| l.starts_with(method)), "no `{method}` row in\n{stdout}");
    }
    for file in [
        "summary.json",
        "config.json",
        "rounds.csv",
        "clients.csv",
        "accuracy.png",
        "clients.png",
        "models/fedavg+wsa.safetensors",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let rounds = std::fs::read_to_string(out.join("rounds.csv")).expect("csv");
    assert_eq!(rounds.lines().count(), 1 + 4 * 2);
    let bad = wsa_lab().args(["fed", "--method", "fedsgd", "--print-config"]).output().expect("run");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("fedavg or fedprox"));
    std::fs::remove_dir_all(&dir).ok();
}

fn run_ok(command: &mut Command) -> (String, String) {
    let run = command.output().expect("run");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    (stdout, stderr)
}

/// The number in "N cells (K computed now, ...)".
fn computed_now(stdout: &str) -> usize {
    let line = stdout.lines().find(|l| l.contains("computed now")).unwrap_or_else(|| panic!("no summary in\n{stdout}"));
    let inside = line.split('(').nth(1).expect("(");
    inside.split_whitespace().next().expect("count").parse().expect("a number")
}

#[test]
fn quick_reproduce_writes_a_report_with_every_family_and_a_rerun_computes_nothing() {
    let dir = temp_dir("reproduce-quick");
    let out = dir.join("out");
    let (stdout, _) = run_ok(wsa_lab().args(["reproduce", "--quick", "--device", "cpu", "--out"]).arg(&out));
    let report = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    for (family, title) in [
        ("connect", "## Mode connectivity (`connect`)"),
        ("fed", "## Federated learning (`fed`)"),
        ("ablation", "## Ablations of WSA (`ablation`)"),
        ("gaussianity", "## Gaussianity of trained weights (`gaussianity`)"),
    ] {
        assert!(report.contains(title), "no {family} section in\n{report}");
        let png = std::fs::read(out.join(format!("figures/{family}.png"))).expect("figure");
        assert!(png.starts_with(b"\x89PNG"), "figures/{family}.png is not a PNG");
        assert!(report.contains(&format!("figures/{family}.png")), "{family}'s figure is not in the report");
    }
    for expected in ["| wsa − plain | loss barrier |", "| fedavg+wsa − fedavg |", "| trained − init |", "95% CI"]
    {
        assert!(report.contains(expected), "missing `{expected}` in\n{report}");
    }
    // Every table row of the summaries has a value for every column (mean ± std over 2 seeds).
    assert!(report.contains(" ± "), "{report}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary["families"].as_array().map(Vec::len), Some(4), "{summary}");
    let cells = std::fs::read_dir(out.join("cells")).expect("cells").count();
    assert_eq!(computed_now(&stdout), cells, "{stdout}");
    let csv = std::fs::read_to_string(out.join("cells.csv")).expect("cells.csv");
    assert!(csv.lines().count() > cells, "{csv}");

    // Run again: every cell is read back, and the numbers are the same.
    let (again, _) = run_ok(wsa_lab().args(["reproduce", "--quick", "--device", "cpu", "--out"]).arg(&out));
    assert_eq!(computed_now(&again), 0, "{again}");
    let summary_again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary, summary_again);

    // Recomputing a cell gives the same numbers (the CPU backend is deterministic).
    let mut files: Vec<_> =
        std::fs::read_dir(out.join("cells")).expect("cells").map(|e| e.expect("entry").path()).collect();
    files.sort();
    let read = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("cell")).expect("json")
    };
    let before = read(&files[0]);
    std::fs::remove_file(&files[0]).expect("remove");
    let (third, _) = run_ok(wsa_lab().args(["reproduce", "--quick", "--device", "cpu", "--out"]).arg(&out));
    assert_eq!(computed_now(&third), 1, "{third}");
    assert_eq!(read(&files[0])["variants"], before["variants"], "{}", files[0].display());
}

#[test]
fn an_interrupted_reproduce_recomputes_only_the_missing_cells() {
    let dir = temp_dir("reproduce-resume");
    let out = dir.join("out");
    let spec_path = dir.join("spec.json");
    // Three digits rows; the third needs MNIST from a folder that does not exist, so the run
    // stops there after finishing the first two rows (2 seeds each).
    let spec = |third_data_dir: &Path| {
        serde_json::json!({
            "version": 1,
            "seeds": 2,
            "connect": [{
                "label": "tiny",
                "base": {
                    "model": { "kind": "mlp", "hidden": [8] },
                    "train": { "epochs": 1 },
                    "data": { "max_train": 300 },
                    "methods": ["plain", "wsa"],
                    "path": { "points": 3 }
                },
                "rows": [
                    { "label": "lr", "set": {} },
                    { "label": "same init", "set": { "pair": { "kind": "seed", "same_init": true } } },
                    { "label": "mnist", "set": { "data": { "dataset": { "name": "mnist" }, "data_dir": third_data_dir, "max_train": 300, "max_test": 200 } } }
                ]
            }]
        })
    };
    std::fs::write(&spec_path, spec(&dir.join("no-such-folder")).to_string()).expect("spec");
    let failed = wsa_lab()
        .args(["reproduce", "--device", "cpu", "--spec"])
        .arg(&spec_path)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{stderr}");
    assert!(stderr.contains("row `mnist`") || stderr.contains("mnist · seed 0"), "the failing cell is named: {stderr}");
    let cells = out.join("cells");
    let mut finished: Vec<_> = std::fs::read_dir(&cells).expect("cells").map(|e| e.expect("entry").path()).collect();
    finished.sort();
    assert_eq!(finished.len(), 4, "the first two rows' cells are kept: {finished:?}");
    let stamps: Vec<_> =
        finished.iter().map(|p| std::fs::metadata(p).expect("meta").modified().expect("mtime")).collect();

    // A report of what finished, computing nothing: it says what is missing.
    let (partial, _) = run_ok(
        wsa_lab()
            .args(["reproduce", "--report-only", "--device", "cpu", "--spec"])
            .arg(&spec_path)
            .arg("--out")
            .arg(&out),
    );
    assert!(partial.contains("4 of 6 cells (0 computed now"), "{partial}");
    let report = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    assert!(report.contains("2 of the spec's 6 cells have not run yet"), "{report}");
    assert_eq!(std::fs::read_dir(&cells).expect("cells").count(), 4);

    // With the digits in place of the missing set, only the last row's two cells run.
    let mut fixed = spec(&dir);
    fixed["connect"][0]["rows"][2] = serde_json::json!({ "label": "mnist", "set": { "train": { "epochs": 2 } } });
    std::fs::write(&spec_path, fixed.to_string()).expect("spec");
    let (stdout, _) =
        run_ok(wsa_lab().args(["reproduce", "--device", "cpu", "--spec"]).arg(&spec_path).arg("--out").arg(&out));
    assert_eq!(computed_now(&stdout), 2, "{stdout}");
    for (path, stamp) in finished.iter().zip(&stamps) {
        assert_eq!(
            &std::fs::metadata(path).expect("meta").modified().expect("mtime"),
            stamp,
            "{} was rewritten",
            path.display()
        );
    }
    assert_eq!(std::fs::read_dir(&cells).expect("cells").count(), 6);
}

#[test]
fn plane_writes_its_grid_figure_and_summary_and_refuses_bad_thirds() {
    let dir = temp_dir("plane");
    let out = dir.join("out");
    let (stdout, stderr) = run_ok(
        wsa_lab()
            .args(["plane", "--device", "cpu", "--pair", "different-init", "--epochs", "3", "--grid", "7", "--out"])
            .arg(&out),
    );
    assert!(stdout.contains("7 x 7 plane") && stdout.contains("θ (bezier control point)"), "{stdout}\n{stderr}");
    let csv = std::fs::read_to_string(out.join("plane.csv")).expect("plane.csv");
    assert_eq!(csv.lines().count(), 1 + 49, "a header and one row per grid point");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary["plane"]["loss"].as_array().map(Vec::len), Some(49));
    assert_eq!(summary["method"], "plain");
    assert!(out.join("plane.png").is_file());
    // The models spanning the plane are written: the saved control point given back as the
    // third model spans the same plane, every grid point's loss the same.
    for model in ["A", "B", "theta"] {
        assert!(out.join(format!("{model}.safetensors")).is_file(), "{model}.safetensors");
    }
    let again = dir.join("again");
    run_ok(
        wsa_lab()
            .args(["plane", "--device", "cpu", "--pair", "different-init", "--epochs", "3", "--grid", "7", "--third"])
            .arg(out.join("theta.safetensors"))
            .arg("--out")
            .arg(&again),
    );
    let from_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(again.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(from_file["plane"]["loss"], summary["plane"]["loss"], "the plane through the saved θ");
    assert_eq!(from_file["third"], "theta");
    assert!(!again.join("theta.safetensors").exists(), "a third model from a file is not written again");
    // A third model that is no file, and one of another architecture, are refused by name.
    let missing =
        wsa_lab().args(["plane", "--third", "nowhere.safetensors", "--out"]).arg(dir.join("x")).output().expect("run");
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && message.contains("--third `nowhere.safetensors`"), "{message}");
    // A model of another architecture (hidden widths 8 instead of 64, 64).
    let printed = wsa_lab().args(["connect", "--print-config"]).output().expect("run");
    let mut config: serde_json::Value = serde_json::from_slice(&printed.stdout).expect("config json");
    config["model"]["hidden"] = serde_json::json!([8]);
    let config_path = dir.join("small.json");
    std::fs::write(&config_path, config.to_string()).expect("write");
    let small = dir.join("small");
    run_ok(
        wsa_lab()
            .args(["connect", "--epochs", "1", "--methods", "plain", "--config"])
            .arg(&config_path)
            .arg("--out")
            .arg(&small),
    );
    let other = wsa_lab()
        .args(["plane", "--epochs", "1", "--third"])
        .arg(small.join("models/plain-a.safetensors"))
        .arg("--out")
        .arg(dir.join("y"))
        .output()
        .expect("run");
    let message = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && message.contains("third model"), "{message}");
    assert!(!dir.join("y").exists(), "nothing written for a refused plane");
    std::fs::remove_dir_all(&dir).ok();
}

/// The CPU backend runs convolutions, pooling and matrix products on rayon's threads; no sum is
/// split between threads, so one thread and two give the same numbers, bit for bit: a CNN pair
/// (convolutions, pooling, WSA) and a federated MLP run (matrix products, averaging).
#[test]
fn one_thread_and_two_give_the_same_numbers() {
    let dir = temp_dir("threads");
    let printed = wsa_lab()
        .args(["connect", "--print-config", "--epochs", "2", "--max-train", "600", "--methods", "plain,wsa"])
        .output()
        .expect("run");
    let mut config: serde_json::Value = serde_json::from_slice(&printed.stdout).expect("config");
    config["model"] = serde_json::json!({ "kind": "cnn", "channels": [8, 16] });
    let config_path = dir.join("cnn.json");
    std::fs::write(&config_path, config.to_string()).expect("write config");
    let summary = |threads: &str, command: &[&str]| -> serde_json::Value {
        let out = dir.join(format!("{}-{threads}", command[0]));
        run_ok(wsa_lab().args(command).args(["--device", "cpu", "--out"]).arg(&out).env("RAYON_NUM_THREADS", threads));
        let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
        let mut summary: serde_json::Value = serde_json::from_str(&text).expect("json");
        summary.as_object_mut().expect("object").remove("seconds");
        summary
    };
    let connect = ["connect", "--config", config_path.to_str().expect("utf-8 path")];
    let (one, two) = (summary("1", &connect), summary("2", &connect));
    assert!(one["methods"].as_array().is_some_and(|m| m.len() == 2), "{one}");
    assert_eq!(one, two, "the CNN pair differs between one thread and two");
    let fed = ["fed", "--clients", "4", "--rounds", "3", "--wsa"];
    assert_eq!(summary("1", &fed), summary("2", &fed), "the federated run differs between one thread and two");
    std::fs::remove_dir_all(&dir).ok();
}
