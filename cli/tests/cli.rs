//! The real `wsa-lab` binary, run as a user would.

use std::path::Path;
use std::process::Command;
#[path = "../../tests/temp_dir.rs"]
mod temp_dir;
use temp_dir::temp_dir;

fn wsa_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsa-lab"))
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
}

#[test]
fn fed_compare_prints_four_methods_and_writes_its_files() {
    let dir = temp_dir("fed");
    let out = dir.join("out");
    let run = wsa_lab()
        .args(["fed", "--device", "cpu", "--clients", "3", "--rounds", "2", "--local-epochs", "1", "--compare"])
        .args(["--target-accuracy", "0.5", "--seeds", "2", "--out"])
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
    // Two seeds: every seed's final accuracy and, per variant with WSA, on how many it ended
    // higher; the files are the first seed's.
    for (with, without) in [("fedavg+wsa", "fedavg"), ("fedprox+wsa", "fedprox")] {
        let line = format!("{with} ended higher than {without} on ");
        assert!(
            stdout.lines().any(|l| l.starts_with(&line) && l.ends_with(" of 2 seeds.")),
            "no `{line}` in\n{stdout}"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary")).expect("json");
    assert_eq!(summary["seeds"].as_array().map(Vec::len), Some(2), "every seed in summary.json");
    let rounds = std::fs::read_to_string(out.join("rounds.csv")).expect("csv");
    assert_eq!(rounds.lines().count(), 1 + 4 * 2);
    let bad = wsa_lab().args(["fed", "--method", "fedsgd", "--print-config"]).output().expect("run");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("fedavg or fedprox"));
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
    // The federated rows log their rounds: a table and one figure per row.
    assert!(report.contains("Per round (mean over seeds)"), "{report}");
    let per_round: Vec<_> = std::fs::read_dir(out.join("figures/fed-rounds")).expect("fed-rounds").collect();
    assert_eq!(per_round.len(), 3, "one figure per federated row of the quick spec");
    assert!(report.contains("figures/fed-rounds/00-"), "{report}");
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
}

/// The spec of the store tests: 4 small digits rows × 2 seeds, a fraction of a second a cell.
fn small_spec(dir: &Path) -> std::path::PathBuf {
    let spec = serde_json::json!({
        "version": 1,
        "seeds": 2,
        "connect": [{
            "label": "small",
            "base": {
                "model": { "kind": "mlp", "hidden": [16] },
                "train": { "epochs": 2 },
                "data": { "max_train": 600 },
                "methods": ["plain", "wsa"],
                "path": { "points": 5 }
            },
            "rows": [
                { "label": "lr", "set": {} },
                { "label": "same init", "set": { "pair": { "kind": "seed", "same_init": true } } },
                { "label": "different init", "set": { "pair": { "kind": "seed", "same_init": false } } },
                { "label": "wd", "set": { "pair": { "kind": "weight-decay", "a": 0.0, "b": 0.001 } } }
            ]
        }]
    });
    let path = dir.join("spec.json");
    std::fs::write(&path, spec.to_string()).expect("spec");
    path
}

fn cell_files(out: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(out.join("cells"))
        .expect("cells")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn a_damaged_cell_file_is_quarantined_named_once_and_recomputed() {
    let dir = temp_dir("reproduce-heal");
    let out = dir.join("out");
    let spec = small_spec(&dir);
    let reproduce = || {
        let mut command = wsa_lab();
        command.args(["reproduce", "--device", "cpu", "--spec"]).arg(&spec).arg("--out").arg(&out);
        command
    };
    run_ok(&mut reproduce());
    let files = cell_files(&out);
    assert_eq!(files.len(), 8);
    let truncated = &files[3];
    let whole = std::fs::read(truncated).expect("read");
    std::fs::write(truncated, &whole[..whole.len() / 3]).expect("truncate");

    let (stdout, stderr) = run_ok(&mut reproduce());
    assert_eq!(computed_now(&stdout), 1, "only the damaged cell runs again: {stdout}");
    let name = truncated.file_name().expect("name").to_string_lossy().into_owned();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "named once: {stderr}");
    assert!(warnings[0].contains(&name) && warnings[0].contains("computed again"), "{stderr}");
    let kept = out.join("cells/quarantine").join(&name);
    assert_eq!(std::fs::read(&kept).expect("quarantined"), &whole[..whole.len() / 3], "kept as it was");
    let recomputed: serde_json::Value = serde_json::from_slice(&std::fs::read(truncated).expect("cell")).expect("json");
    let original: serde_json::Value = serde_json::from_slice(&whole).expect("json");
    assert_eq!(recomputed["variants"], original["variants"], "the same numbers again");
    let report = std::fs::read_to_string(out.join("results.md")).expect("report");
    assert!(report.contains(&format!("`cells/quarantine/{name}`")), "the report names it: {report}");

    // A rerun finds nothing damaged and names nothing.
    let (again, stderr) = run_ok(&mut reproduce());
    assert_eq!(computed_now(&again), 0, "{again}");
    assert!(!stderr.contains("warning:"), "{stderr}");

    // A store from a newer build stops the run, naming the file, and is left as it was.
    let mut newer: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("json");
    newer["version"] = serde_json::json!(99);
    std::fs::write(&files[0], newer.to_string()).expect("write");
    let refused = reproduce().output().expect("run");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&files[0].display().to_string()) && stderr.contains("newer build"), "{stderr}");
}

#[test]
fn a_reproduce_killed_at_random_moments_leaves_a_store_the_next_run_completes() {
    let dir = temp_dir("reproduce-kill");
    let out = dir.join("out");
    let spec = small_spec(&dir);
    let reproduce = || {
        let mut command = wsa_lab();
        command.args(["reproduce", "--device", "cpu", "--spec"]).arg(&spec).arg("--out").arg(&out);
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        command
    };
    // The uninterrupted run's numbers, in a store of its own, to compare with; its time sets
    // the kill moments, so that they fall within cells on a fast machine and a slow one alike.
    let reference = dir.join("reference");
    let started = std::time::Instant::now();
    run_ok(wsa_lab().args(["reproduce", "--device", "cpu", "--spec"]).arg(&spec).arg("--out").arg(&reference));
    let per_cell = started.elapsed().as_secs_f64() / 8.0;

    // SIGKILL (what `Child::kill` sends on Unix) at seeded moments between a fifth of a cell's
    // time and two cells' time: before the first cell, within cells, between them, during writes.
    let mut state: u64 = 0x5eed_0033;
    let mut killed = 0;
    for _ in 0..8 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let share = 0.2 + 1.8 * ((state >> 11) as f64 / (1u64 << 53) as f64);
        let mut child = reproduce().spawn().expect("spawn");
        std::thread::sleep(std::time::Duration::from_secs_f64(per_cell * share));
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill");
            killed += 1;
        }
        child.wait().expect("reap");
    }
    assert!(killed >= 4, "most runs must be killed mid-way to test anything ({killed} of 8)");

    let (stdout, stderr) =
        run_ok(wsa_lab().args(["reproduce", "--device", "cpu", "--spec"]).arg(&spec).arg("--out").arg(&out));
    assert!(stdout.contains("8 of 8 cells"), "{stdout}\n{stderr}");
    let files = cell_files(&out);
    assert_eq!(files.len(), 8);
    for (file, expected) in files.iter().zip(cell_files(&reference)) {
        let read = |path: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(path).expect("cell")).expect("every cell file is whole JSON")
        };
        assert_eq!(read(file)["variants"], read(&expected)["variants"], "{}", file.display());
    }
}

/// Runs `wsa-lab` with `args` expecting it to refuse; returns stderr after checking what every
/// error must be: one `error:` line, no clap usage block, no clause twice, no source path.
fn refused(args: &[&str], envs_removed: &[&str]) -> String {
    let mut command = wsa_lab();
    command.args(args);
    for name in envs_removed {
        command.env_remove(name);
    }
    let run = command.output().expect("run");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success(), "{args:?} was accepted: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{args:?}: one error line, got\n{stderr}");
    let line = errors[0];
    assert!(!stderr.contains("Usage:"), "{args:?}: a usage block for a bad value:\n{stderr}");
    assert!(line.matches("os error").count() <= 1, "{args:?}: {line}");
    assert!(!stderr.contains(".cargo/registry") && !stderr.contains(".rs:"), "{args:?}: {stderr}");
    // No clause of the message repeated ("A: B: B").
    let clauses: Vec<&str> = line.split(": ").map(str::trim).filter(|c| c.len() > 12).collect();
    for (i, clause) in clauses.iter().enumerate() {
        assert!(!clauses[i + 1..].contains(clause), "{args:?}: `{clause}` twice in {line}");
    }
    line.to_string()
}

#[test]
fn every_refusal_is_one_sentence_of_problem_and_fix() {
    let dir = temp_dir("messages");
    let not_json = dir.join("config.json");
    std::fs::write(&not_json, "{\"version\": 2, \"train\": ").expect("write");
    let a_file = dir.join("results");
    std::fs::write(&a_file, "not a folder").expect("write");
    let config = not_json.to_string_lossy().into_owned();
    let out = a_file.to_string_lossy().into_owned();
    let initial_target = dir.join("initial-target.json");
    std::fs::write(&initial_target, "{\"clients\": 2, \"target\": \"initial\"}").expect("write");
    let initial_target = initial_target.to_string_lossy().into_owned();
    let three_seeds = dir.join("three-seeds.json");
    std::fs::write(&three_seeds, "{\"clients\": 2, \"seeds\": 3}").expect("write");
    let three_seeds = three_seeds.to_string_lossy().into_owned();

    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["connect", "--config", &config], vec!["not valid JSON", &config]),
        (
            vec!["connect", "--device", "cpu", "--epochs", "1", "--out", &out],
            vec!["--out", "is a file", "name a folder"],
        ),
        (vec!["fed", "--device", "cpu", "--rounds", "1", "--out", &out], vec!["is a file"]),
        (vec!["connect", "--lambda", "-1", "--print-config"], vec!["wsa.lambda = -1", "[0, 10000]"]),
        (vec!["plane", "--margin", "-1", "--print-config"], vec!["margin"]),
        (vec!["connect", "--seeds", "abc"], vec!["--seeds `abc` is not a whole number"]),
        (vec!["connect", "--seeds", "-1"], vec!["--seeds `-1` must be 0 or more"]),
        (vec!["connect", "--epochs", "2.5"], vec!["--epochs `2.5` is not a whole number"]),
        (vec!["fed", "--fraction", "-0.5", "--print-config"], vec!["fraction", "-0.5"]),
        (vec!["fed", "--dirichlet-alpha", "-1", "--print-config"], vec!["-1"]),
        (vec!["reproduce", "--seeds", "-3"], vec!["--seeds `-3` must be 0 or more"]),
        (vec!["connect", "--lambda", "fast"], vec!["--lambda `fast` is not a number"]),
        (vec!["fed", "--target", "initial", "--device", "cpu", "--rounds", "1"], vec!["no WSA: add --wsa"]),
        (
            vec!["fed", "--target", "sideways", "--print-config"],
            vec!["`sideways`", "unknown federated target; choose one of fused, global, initial"],
        ),
        (
            vec!["flower", "init", "--config", &initial_target, "--out", &out],
            vec!["`target` must be `fused` (not `initial`)", "wsa-lab fed"],
        ),
        (
            vec!["flower", "init", "--config", &three_seeds, "--out", &out],
            vec!["`seeds` must be 1 (not 3)", "wsa-lab fed --seeds"],
        ),
        (vec!["fed", "--seeds", "0", "--print-config"], vec!["seeds", "between 1 and 100"]),
    ];
    for (args, expected) in &cases {
        let line = refused(args, &[]);
        for text in expected {
            assert!(line.contains(text), "{args:?}: `{text}` not in {line}");
        }
    }
    // No display: said in a sentence, before winit names its own source files.
    let line = refused(&["app"], &["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]);
    assert!(line.contains("no display") && line.contains("Xvfb"), "{line}");
    assert!(!a_file.is_dir(), "nothing was written over the file");
}

#[test]
fn own_data_from_the_command_line_trains_and_travels_in_the_config() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/data");
    let table = fixtures.join("table.csv");
    let test = fixtures.join("table-test.csv");
    let dir = temp_dir("own-data");
    let out = dir.join("out");
    let flags = [
        "--data",
        table.to_str().expect("utf-8"),
        "--data-test",
        test.to_str().expect("utf-8"),
        "--label-column",
        "species",
        "--epochs",
        "2",
        "--methods",
        "plain",
    ];
    let printed = wsa_lab().arg("connect").args(flags).arg("--print-config").output().expect("run");
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    // Twelve rows: batches of four (the default 64 is refused for so few samples).
    let mut config: serde_json::Value = serde_json::from_slice(&printed.stdout).expect("config json");
    config["train"]["batch_size"] = 4.into();
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, serde_json::to_vec(&config).expect("json")).expect("write config");
    let run = wsa_lab()
        .args(["connect", "--device", "cpu", "--config", config_path.to_str().expect("utf-8")])
        .args(["--out", out.to_str().expect("utf-8")])
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{said}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).expect("config.json")).expect("json");
    let dataset = &config["data"]["dataset"];
    assert_eq!((dataset["name"].as_str(), dataset["format"].as_str()), (Some("file"), Some("csv")), "{dataset}");
    assert_eq!(dataset["label_column"], "species");
    assert!(dataset["test"].as_str().expect("the test file").ends_with("table-test.csv"));

    // Kinds the flag cannot take say what to do instead, in one line.
    let (npy, notes, archive) = (dir.join("x.npy"), dir.join("notes.txt"), dir.join("cifar-10-binary.tar.gz"));
    for file in [&npy, &notes, &archive] {
        std::fs::write(file, b"not data").expect("write");
    }
    let refusals = [
        (vec!["--data", npy.to_str().expect("utf-8")], "name them in a config file"),
        (vec!["--data", notes.to_str().expect("utf-8")], "no data format WSA Lab reads"),
        (vec!["--data", archive.to_str().expect("utf-8")], "unpack it"),
        (vec!["--data", "no-such-folder"], "no such file or folder"),
        (vec!["--data", table.to_str().expect("utf-8"), "--dataset", "digits"], "cannot be used with"),
    ];
    for (flags, needle) in refusals {
        let run = wsa_lab().arg("connect").args(&flags).arg("--print-config").output().expect("run");
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && said.contains(needle), "{flags:?}: {said}");
    }
}

#[test]
fn a_given_pair_gives_the_numbers_connect_gave_for_it_and_refuses_data_it_does_not_fit() {
    let dir = temp_dir("pair");
    let (trained, given) = (dir.join("connect"), dir.join("pair"));
    let common = ["--device", "cpu", "--max-train", "600", "--methods", "plain,wm,rescale,repair"];
    let run = wsa_lab().arg("connect").args(common).arg("--out").arg(&trained).output().expect("run connect");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let models = trained.join("models");
    let pair = wsa_lab()
        .arg("pair")
        .args([models.join("plain-a.safetensors"), models.join("plain-b.safetensors")])
        .args(common)
        .arg("--out")
        .arg(&given)
        .output()
        .expect("run pair");
    let said = String::from_utf8_lossy(&pair.stdout);
    assert!(pair.status.success(), "{}", String::from_utf8_lossy(&pair.stderr));
    assert!(said.contains("hidden.0.weight") && said.contains("8970 parameters"), "what was read is shown: {said}");
    let summary = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary.json")).expect("json")
    };
    let (from_training, from_files) = (summary(&trained), summary(&given));
    let count = |s: &serde_json::Value| s["methods"].as_array().map_or(0, Vec::len);
    assert_eq!((count(&from_training), count(&from_files)), (4, 4), "every method evaluated on both sides");
    for (theirs, ours) in from_training["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .zip(from_files["methods"].as_array().expect("methods"))
    {
        assert_eq!(theirs["name"], ours["name"]);
        for field in ["barriers", "endpoint_a", "endpoint_b", "path", "scope_distance"] {
            assert_eq!(
                theirs[field], ours[field],
                "{} {field}: the saved pair, read back, gives the trained pair's numbers",
                ours["name"]
            );
        }
    }
    assert!(given.join("paths.png").is_file());

    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/torch");
    let torch = fixtures.join("sequential_mlp.safetensors");
    let refusals: [(Vec<&str>, &str); 2] = [
        (
            vec!["--dataset", "digits"],
            "digits does not fit the models: the models take 784 inputs ([784]) and give 10 classes, but the data has 64 values per sample",
        ),
        (vec!["--dataset", "mnist-small", "--methods", "wm+wsa"], "trains the pair with WSA"),
    ];
    for (flags, needle) in refusals {
        let run = wsa_lab()
            .arg("pair")
            .args([&torch, &torch])
            .args(&flags)
            .arg("--out")
            .arg(dir.join("refused"))
            .output()
            .expect("run");
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success() && said.contains(needle), "{flags:?}: {said}");
        assert!(!dir.join("refused").exists(), "{flags:?}: nothing written");
    }
    // The config a given pair runs: the model the file's names and shapes describe.
    let printed = wsa_lab()
        .arg("pair")
        .args([&torch, &torch])
        .args(["--dataset", "mnist-small", "--print-config"])
        .output()
        .expect("run");
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let config: serde_json::Value = serde_json::from_slice(&printed.stdout).expect("config json");
    assert_eq!(config["model"]["kind"], "stack", "{config}");
}

/// The teacher's kit on paper: the worksheet asks every step's question, and the teacher's notes
/// hold a run's own numbers: each claim of the WSA step, checked on the library's run of that
/// step's config, is printed as is, and so is its table's loss barrier.
#[test]
fn the_tour_worksheet_asks_every_question_and_its_notes_hold_the_runs_numbers() {
    let dir = temp_dir("worksheet");
    let out = dir.join("kit");
    let run = wsa_lab().args(["tour", "--device", "cpu", "--worksheet"]).arg(&out).output().expect("run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    check_kit(&out, &wsa_tour::Tour::shipped());

    // A file where the folder should go is refused before anything runs.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").expect("write");
    let refused = wsa_lab().args(["tour", "--worksheet"]).arg(&file).output().expect("run");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("a-file"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// The worksheet and notes in `out` are `tour`'s: every step's heading and question, the
/// exercises' answers in the notes only, and the WSA step's claims and loss barrier as the
/// library's run of that step gives them, in the tour's words; the pages in its language.
fn check_kit(out: &Path, tour: &wsa_tour::Tour) {
    use wsa_core::experiment::method::Method;
    use wsa_core::experiment::seeds::mean_std;
    use wsa_tour::worksheet::escape;
    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect(name);
    let (sheet, notes) = (read("worksheet.html"), read("teacher-notes.html"));
    let lang = format!("<html lang=\"{}\">", tour.language);
    assert!(sheet.contains(&lang) && notes.contains(&lang), "{lang}");
    for (i, step) in tour.steps.iter().enumerate() {
        let heading = wsa_tour::fill(&tour.words.worksheet.step, &[("number", &(i + 1)), ("title", &step.title)]);
        let heading = format!("<h2>{}</h2>", escape(&heading));
        assert!(sheet.contains(&heading) && notes.contains(&heading), "{heading}");
        assert!(sheet.contains(&escape(&step.predict)), "step {}'s question", i + 1);
        for exercise in &step.exercises {
            assert!(sheet.contains(&escape(&exercise.task)) && notes.contains(&escape(&exercise.task)));
            assert!(!sheet.contains(&escape(&exercise.answer)), "the students' sheet keeps the answer out");
            assert!(notes.contains(&escape(&exercise.answer)), "the notes give it");
        }
    }
    let step = tour
        .steps
        .iter()
        .find(|s| s.connect_config().is_some_and(|c| c.methods.contains(&Method::WSA)))
        .expect("a step with WSA");
    let config = step.connect_config().expect("its config");
    let cpu = wsa_core::device::cpu();
    let result = wsa_core::wait(wsa_core::experiment::connect::run(config, &cpu, &mut wsa_core::cancel::Silent))
        .expect("the step's run")
        .result;
    let checks = step.check_claims(&result);
    assert!(!checks.is_empty());
    for check in &checks {
        assert!(notes.contains(&escape(check.line())), "missing `{}`", check.line());
    }
    let k = result.methods.iter().position(|m| m.method == Method::WSA).expect("wsa");
    let barriers: Vec<f64> = result.seed_runs().iter().map(|r| r.methods[k].barriers.loss).collect();
    let summary = wsa_core::experiment::stats::summarize(&barriers).expect("seeds");
    assert!(notes.contains(&format!("<td>{}</td>", mean_std(&summary, 3))), "WSA's loss barrier");
}

/// `--tour-file` writes the kit of a translation (German: every word from tour/tour.de.ron, the
/// same runs); a tour file that cannot be used is refused in one line naming it and the fix,
/// by `tour` and by `app` before any window opens.
#[test]
fn a_translated_tour_file_gives_its_worksheet_and_a_broken_one_is_refused() {
    let dir = temp_dir("worksheet-de");
    let out = dir.join("kit");
    let german = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tour/tour.de.ron");
    let run = wsa_lab()
        .args(["tour", "--device", "cpu", "--tour-file"])
        .arg(&german)
        .arg("--worksheet")
        .arg(&out)
        .output()
        .expect("run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let tour = wsa_tour::Tour::read_file(&german).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tour.language, "de");
    check_kit(&out, &tour);
    let broken = dir.join("tour.xx.ron");
    std::fs::write(&broken, std::fs::read_to_string(&german).expect("read").replace("{total}", "")).expect("write");
    for args in [&["tour", "--worksheet", "unused", "--tour-file"][..], &["app", "--tour-file"]] {
        let refused = wsa_lab().args(args).arg(&broken).output().expect("run");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(
            stderr.contains("tour.xx.ron") && stderr.contains("{total}") && stderr.contains("--tour-file"),
            "{stderr}"
        );
    }
}
