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
