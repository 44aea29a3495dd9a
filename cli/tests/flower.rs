//! A real Flower federation (flower/, scripts/flower-local.sh): a SuperLink and SuperNodes as
//! processes on loopback, clients training with `wsa-lab flower train` (in a `wsa-lab flower
//! serve` process per client, warm from round to round, or started afresh every round with
//! `--cold-clients`), the WsaFedAvg strategy averaging and fusing scopes. It must give
//! `wsa-lab fed`'s numbers both ways, survive a client that
//! dies or fails, refuse a SuperNode whose key was not registered (TLS and SuperNode
//! authentication), go on with the same numbers after its SuperLink was killed and restarted,
//! and its NumPy arithmetic must be the engine's.
//!
//! Needs a Python with Flower (`FLOWER_PYTHON`, set by `.ci/run`): the tests that run Flower are
//! ignored unless asked for (`--include-ignored`, as `.ci/run` does), and asked for they fail
//! without it. The bridge's own test needs no Flower and always runs.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use wsa_core::model::{HostParams, ModelConfig, ModelLayout};
use wsa_core::rng::Rng;
use wsa_core::scope::{FusionRule, Scope, fuse};
#[path = "../../tests/temp_dir.rs"]
mod temp_dir;
use temp_dir::temp_dir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repository root").to_path_buf()
}

fn wsa_lab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsa-lab"))
}

/// The Python with Flower; a case that asks for it fails where this machine has none.
fn flower_python() -> PathBuf {
    let python = std::env::var_os("FLOWER_PYTHON").map(PathBuf::from);
    match python {
        Some(p) if Command::new(&p).args(["-c", "import flwr, numpy"]).output().is_ok_and(|o| o.status.success()) => p,
        _ => panic!("set FLOWER_PYTHON to a Python with flwr 1.42.0 and numpy (scripts/flower-venv.sh makes one)"),
    }
}

/// A federated config: the digits, `clients` clients, three rounds, WSA on, one local epoch.
fn write_config(dir: &Path, clients: usize) -> PathBuf {
    let printed = wsa_lab()
        .args(["fed", "--print-config", "--wsa", "--rounds", "3", "--local-epochs", "1", "--seed", "4"])
        .args(["--clients", &clients.to_string()])
        .output()
        .expect("run wsa-lab");
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let path = dir.join("fed.json");
    std::fs::write(&path, &printed.stdout).expect("write config");
    path
}

/// The longest a federation of these tests may take (3 clients x 3 rounds take about a minute on
/// two cores); past it the script is stopped (it then stops everything it started) and the test
/// fails rather than hang.
const FEDERATION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(900);

/// Runs scripts/flower-local.sh on `config` into `out` on the CPU, with `extra` options;
/// returns its output (stdout and stderr together).
fn flower_local(python: &Path, config: &Path, out: &Path, extra: &[&str]) -> String {
    use std::io::Read;
    let mut child = Command::new(repo().join("scripts/flower-local.sh"))
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(["--device", "cpu"])
        .args(extra)
        .env("FLOWER_PYTHON", python)
        .env("WSA_LAB", env!("CARGO_BIN_EXE_wsa-lab"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run scripts/flower-local.sh");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            pipe.read_to_end(&mut text).ok();
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for flower-local.sh") {
            break Some(status);
        }
        if started.elapsed() > FEDERATION_DEADLINE {
            // SIGTERM, not SIGKILL: the script's trap stops the processes it started.
            Command::new("kill").args(["-TERM", &child.id().to_string()]).status().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let output = format!("{}{}", stdout.join().expect("stdout"), stderr.join().expect("stderr"));
    let Some(status) = status else { panic!("flower-local.sh ran past {FEDERATION_DEADLINE:?}:\n{output}") };
    assert!(status.success(), "flower-local.sh failed:\n{output}");
    output
}

/// `wsa-lab fed`'s results for `config`, in `dir/fed`: the numbers every Flower run must give.
fn reference_run(dir: &Path, config: &Path) -> PathBuf {
    let reference = dir.join("fed");
    let fed = wsa_lab().args(["fed", "--device", "cpu", "--config"]).arg(config).arg("--out").arg(&reference).output();
    assert!(fed.expect("run wsa-lab fed").status.success());
    reference
}

/// The same operations in the same order: equal, not merely close, round by round and in the
/// final global model.
fn assert_same_numbers(reference: &Path, out: &Path, what: &str) {
    let (ours, theirs) = (rounds_of(reference), rounds_of(out));
    assert_eq!(theirs.len(), ours.len(), "{what}: every round");
    for (a, b) in ours.iter().zip(&theirs) {
        for key in ["round", "clients", "test_loss", "test_accuracy", "target", "client_scopes", "client_spread"] {
            assert_eq!(a[key], b[key], "round {}: `{key}` differs between wsa-lab fed and {what}", a["round"]);
        }
    }
    let model = |dir: &Path| wsa_core::io::load_model(&dir.join("models/fedavg+wsa.safetensors")).expect("model");
    assert_eq!(model(reference).values, model(out).values, "{what}: the final global models differ");
}

fn read_log(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join("logs").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn rounds_of(summary_dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(summary_dir.join("summary.json")).expect("summary.json");
    let summary: Value = serde_json::from_str(&text).expect("summary.json is JSON");
    let run = &summary["runs"][0];
    assert_eq!(run["name"], "fedavg+wsa", "{summary}");
    run["rounds"].as_array().expect("rounds").clone()
}

/// No SuperLink, SuperNode or ClientApp of ours is left running.
fn assert_no_flower_processes_left(out: &Path) {
    let listed = Command::new("ps").args(["-eo", "args"]).output().expect("ps");
    let processes = String::from_utf8_lossy(&listed.stdout);
    let marker = out.to_string_lossy();
    let left: Vec<&str> = processes
        .lines()
        .filter(|l| l.contains("flower-super") || l.contains("flwr-") || l.contains(marker.as_ref()))
        .filter(|l| l.contains(marker.as_ref()) || l.contains("flwr-home"))
        .collect();
    assert!(left.is_empty(), "processes left running: {left:#?}");
}

#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn a_flower_federation_gives_the_numbers_of_wsa_lab_fed() {
    let python = flower_python();
    let dir = temp_dir("parity");
    let config = write_config(&dir, 3);
    let reference = reference_run(&dir, &config);
    for (clients, extra) in [("warm clients", &[][..]), ("cold clients", &["--cold-clients"][..])] {
        let out = dir.join(clients.replace(' ', "-"));
        let log = flower_local(&python, &config, &out, extra);
        assert!(log.contains("3 SuperNodes"), "{clients}: {log}");
        assert_eq!(rounds_of(&out).len(), 3, "{clients}: three rounds through Flower");
        assert_same_numbers(&reference, &out, &format!("Flower with {clients}"));
        assert!(out.join("rounds.csv").is_file() && out.join("clients.csv").is_file());
        // Warm: each node's ClientApps ran in its one warm client; cold: Flower started them.
        let node_log = read_log(&out, "supernode-0.log");
        assert_eq!(node_log.contains("[wsa-lab warm client"), extra.is_empty(), "{clients}: {node_log}");
        assert_no_flower_processes_left(&out);
    }
}

/// A `wsa-lab flower serve` process: a request line in, a reply line out.
struct Served {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::io::BufReader<std::process::ChildStdout>,
}

impl Served {
    fn start() -> Self {
        let mut child = wsa_lab()
            .args(["flower", "serve"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start wsa-lab flower serve");
        let input = child.stdin.take().expect("stdin");
        let output = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, input, output }
    }

    fn ask(&mut self, request: &str) -> Value {
        use std::io::{BufRead, Write};
        writeln!(self.input, "{request}").expect("send a request");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("read a reply");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    fn step(&mut self, args: &[String]) -> Value {
        self.ask(&serde_json::json!({ "step": args }).to_string())
    }

    /// Closes its input; it must end, successfully.
    fn close(self) {
        let Self { mut child, input, .. } = self;
        drop(input);
        assert!(child.wait().expect("serve ends").success(), "serve ends when its input closes");
    }
}

/// The arguments of `flower train` for `client` in `round`, from the model and target `init`
/// wrote to `start`, into `out`.
fn train_args(config: &str, client: &str, round: &str, start: &Path, out: &Path) -> Vec<String> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (global, target) = (path(&start.join("global.safetensors")), path(&start.join("target.json")));
    ["train", "--device", "cpu", "--config", config, "--client", client, "--round", round]
        .into_iter()
        .map(str::to_owned)
        .chain(["--global".into(), global, "--target".into(), target, "--out".into(), path(out)])
        .collect()
}

/// `wsa-lab flower serve` runs each step as its one-shot command does (the same printed output,
/// models, targets and replies), keeps going after a request it refuses, and reads an edited
/// config afresh.
#[test]
fn the_engine_process_gives_the_one_shot_steps_results_and_answers_bad_requests() {
    let dir = temp_dir("serve");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let config = path(&write_config(&dir, 3));
    let start = dir.join("start");
    let one_shot =
        wsa_lab().args(["flower", "init", "--device", "cpu", "--config", &config, "--out"]).arg(&start).output();
    let one_shot = one_shot.expect("init");
    assert!(one_shot.status.success());
    let printed: Value = serde_json::from_slice(&one_shot.stdout).expect("init prints JSON");
    for (client, round) in [("0", "1"), ("2", "2")] {
        let out = dir.join(format!("one-shot-{client}"));
        let done = wsa_lab().arg("flower").args(train_args(&config, client, round, &start, &out)).output();
        let done = done.expect("train");
        assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    }

    let mut serve = Served::start();
    let served_init = dir.join("served-start");
    let init =
        serve.step(&["init", "--device", "cpu", "--config", &config, "--out", &path(&served_init)].map(String::from));
    assert_eq!(init["ok"], true, "{init}");
    assert_eq!(init["output"], printed, "init answers what its one-shot command prints");
    assert_eq!(init["output"]["clients"], 3, "{init}");
    let file = |dir: &Path, name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Models compared by their tensors: the files' metadata is a map written in an order of the
    // process's own.
    let model = |dir: &Path, name: &str| {
        let model = wsa_core::io::load_model(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        (model.layout.params.iter().map(|p| p.path.clone()).collect::<Vec<_>>(), model.values)
    };
    assert!(model(&served_init, "global.safetensors") == model(&start, "global.safetensors"), "served init's model");
    assert_eq!(file(&served_init, "target.json"), file(&start, "target.json"));

    let refused = [
        ("not json", "is not a step"),
        ("", "is not a step"),
        (r#"{"step": ["fly"]}"#, "unrecognized subcommand"),
        (r#"{"step": ["serve"]}"#, "not a step it can run"),
    ];
    for (request, why) in refused {
        let reply = serve.ask(request);
        assert!(reply["ok"] == false && reply["error"].as_str().is_some_and(|e| e.contains(why)), "{request}: {reply}");
    }
    let bad = serve.step(&train_args(&config, "3", "1", &start, &dir.join("served-bad-client")));
    assert!(bad["error"].as_str().is_some_and(|e| e.contains("client 3 does not exist")), "{bad}");
    // The same steps as the one-shot commands, after the refusals: the same files.
    let without_seconds = |dir: &Path| {
        let mut reply: Value = serde_json::from_slice(&file(dir, "reply.json")).expect("reply.json");
        reply.as_object_mut().expect("object").remove("seconds");
        reply
    };
    for (client, round) in [("0", "1"), ("2", "2")] {
        let out = dir.join(format!("served-{client}"));
        let reply = serve.step(&train_args(&config, client, round, &start, &out));
        assert_eq!(reply, serde_json::json!({ "ok": true, "output": null }));
        let one_shot = dir.join(format!("one-shot-{client}"));
        assert!(model(&out, "params.safetensors") == model(&one_shot, "params.safetensors"), "client {client}'s model");
        assert_eq!(without_seconds(&out), without_seconds(&one_shot), "client {client}");
    }
    // An edited config (other clients) is read again, not served from what was kept.
    let text = std::fs::read_to_string(&config).expect("config");
    let mut edited: Value = serde_json::from_str(&text).expect("json");
    edited["clients"] = serde_json::json!(2);
    std::fs::write(&config, edited.to_string()).expect("edit the config");
    let after_edit = serve.step(&train_args(&config, "2", "1", &start, &dir.join("served-edited")));
    assert!(after_edit["error"].as_str().is_some_and(|e| e.contains("among 2 clients")), "{after_edit}");
    serve.close();
}

/// The clients of each round, in order.
fn clients_of(round: &Value) -> Vec<u64> {
    round["clients"].as_array().expect("clients").iter().filter_map(Value::as_u64).collect()
}

/// Flower 1.42's SuperNode authentication: the SuperLink runs with TLS and
/// `--enable-supernode-auth`, each SuperNode's public key is registered through its Control API
/// (`flwr supernode register`) and the SuperNode signs its requests with the private half
/// (`--auth-supernode-private-key`). A fourth SuperNode, posing as client 0 with a key of its
/// own that nobody registered, must be turned away, by key, and change nothing.
#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn a_secured_federation_refuses_an_unregistered_node_by_its_key_and_gives_the_same_numbers() {
    let python = flower_python();
    let dir = temp_dir("secure");
    let config = write_config(&dir, 3);
    let reference = reference_run(&dir, &config);
    let out = dir.join("flower");
    let log = flower_local(&python, &config, &out, &["--secure", "--rogue-node"]);
    for k in 0..3 {
        assert!(log.contains(&format!("registered supernode-{k}'s key")), "{log}");
    }
    let superlink = read_log(&out, "superlink.log");
    assert!(
        superlink.contains("Uvicorn running on https://127.0.0.1"),
        "the SuperLink did not serve TLS:\n{superlink}"
    );

    // The SuperLink names the refused key (its PEM, newlines escaped) in the line that refuses it.
    let pem = std::fs::read_to_string(out.join("pki/supernode-rogue.pem")).expect("the rogue node's public key");
    let key_in_log = pem.trim_end().replace('\n', "\\n");
    let refusal = superlink.lines().find(|l| l.contains(&key_in_log));
    assert!(
        refusal
            .is_some_and(|l| l.contains("activate-node") && l.contains("No SuperNode found with the given public key")),
        "the SuperLink's log does not refuse the unregistered key {key_in_log}:\n{superlink}"
    );
    let rogue = read_log(&out, "supernode-rogue.log");
    assert!(rogue.contains("Failed to activate SuperNode"), "{rogue}");
    assert!(log.contains("the SuperLink refused the unregistered SuperNode"), "{log}");

    // Only the registered nodes trained: client 0 once, not twice.
    for round in rounds_of(&out) {
        assert_eq!(clients_of(&round), [0, 1, 2], "round {}", round["round"]);
    }
    assert_same_numbers(&reference, &out, "the secured Flower federation");
    assert_no_flower_processes_left(&out);
}

/// Flower 1.42 keeps no ServerApp state: a SuperLink that dies takes the run with it, and a
/// restarted one marks the run failed. The SuperLink keeps its SuperNodes in a state file
/// (`--database`), so they reconnect to the restarted one by themselves; the server checkpoints
/// every round, and a new run with `resume=true` goes on from the last one written, with the same
/// numbers as a federation that was never interrupted.
#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn a_superlink_killed_after_a_round_restarts_and_the_federation_resumes_with_the_same_numbers() {
    let python = flower_python();
    let dir = temp_dir("restart");
    let config = write_config(&dir, 3);
    let reference = reference_run(&dir, &config);
    let out = dir.join("flower");
    let log = flower_local(&python, &config, &out, &["--secure", "--restart-superlink-after-round", "1"]);
    assert!(log.contains("killed the SuperLink (and the ServerApp it ran) after round 1"), "{log}");
    assert!(log.contains("the federation stopped after round 1 of 3: rounds 1..1 are kept"), "{log}");
    assert!(log.contains("restarting the SuperLink"), "{log}");

    // Round 1 was kept, not computed again; rounds 2 and 3 came after the restart. (What the
    // killed ServerApp logged last may not have reached `flwr run` before the SuperLink went.)
    let server = read_log(&out, "server.log");
    let (_, resumed) = server.split_once("resuming after round 1 of 3").expect("the run resumed after round 1");
    let round_lines = |r: usize| resumed.lines().filter(|l| l.contains(&format!("round {r}: 3 clients"))).count();
    assert_eq!((round_lines(1), round_lines(2), round_lines(3)), (0, 1, 1), "{server}");

    // The restarted SuperLink knew the registered SuperNodes: the same SuperNode processes, with
    // the node IDs they got once, served the run before the restart and the one after it.
    let superlink = read_log(&out, "superlink.log");
    assert!(superlink.contains("--- SuperLink restarted ---"), "{superlink}");
    for k in 0..3 {
        let node = read_log(&out, &format!("supernode-{k}.log"));
        assert_eq!(node.matches("SuperNode ID:").count(), 1, "supernode-{k} connected more than once:\n{node}");
        let runs: std::collections::BTreeSet<&str> =
            node.lines().filter_map(|l| l.split("[RUN ").nth(1)).filter_map(|r| r.split(']').next()).collect();
        assert!(runs.len() >= 2, "supernode-{k} did not serve the resumed run: {runs:?}\n{node}");
    }

    assert_same_numbers(&reference, &out, "the federation resumed after the SuperLink's restart");
    assert_no_flower_processes_left(&out);
}

#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn a_client_that_dies_or_fails_leaves_its_round_to_the_others() {
    let python = flower_python();
    let dir = temp_dir("failure");
    let config = write_config(&dir, 3);
    let out = dir.join("flower");
    // Clients 0-2, a fourth SuperNode whose partition does not exist (every round it is bad
    // input to the bridge), and client 2 killed as soon as round 1 is written.
    let log = flower_local(
        &python,
        &config,
        &out,
        &["--extra-node", "partition-id=9", "--stop-client", "2", "--after-round", "1", "--round-timeout", "45"],
    );
    let rounds = rounds_of(&out);
    let clients = clients_of;
    assert_eq!(rounds.len(), 3, "every round completed:\n{log}");
    assert_eq!(clients(&rounds[0]), [0, 1, 2], "round 1 had every client");
    for round in &rounds[1..] {
        assert_eq!(clients(round), [0, 1], "round {} went on without the dead client", round["round"]);
        assert!(round["test_loss"].as_f64().is_some_and(f64::is_finite), "{round}");
    }
    // The server said why each reply was missing: the bridge's own message for the bad node,
    // and which client went silent.
    assert!(log.contains("left out: ") && log.contains("client 9 does not exist"), "{log}");
    assert!(log.lines().any(|l| l.contains("round 2: node") && l.contains("(client 2) left out")), "{log}");
    assert_no_flower_processes_left(&out);
}

/// The server's checkpoint (flower/wsa_flower/checkpoint.py): the model and target of the last
/// round read back exactly, a rounds file is cut back to the checkpoint's round (a round written
/// but not checkpointed runs again), and a checkpoint of another config is refused.
#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn the_servers_checkpoint_reads_back_exactly_and_refuses_another_config() {
    let python = flower_python();
    let dir = temp_dir("checkpoint");
    let code = "import json, sys\nfrom collections import OrderedDict\nfrom pathlib import Path\nimport numpy as np\n\
                from wsa_flower import bridge, checkpoint\nd = json.load(sys.stdin)\nout = Path(d['out'])\n\
                model = OrderedDict((k, np.array(v, dtype=np.float32)) for k, v in d['model'].items())\n\
                checkpoint.save(out, config_text='{\"rounds\": 5}', round=2, rounds=5, model=model, layers=['a', 'b'],\n\
                                target=[tuple(t) for t in d['target']], seconds=1.5)\n\
                bridge.write_json(out / 'flower-rounds.json', [{'round': r, 'x': 0.1 * r} for r in (1, 2, 3)])\n\
                back = checkpoint.load(out, '{\"rounds\": 5}', ['a', 'b'])\n\
                dropped = checkpoint.keep_rounds_up_to(out, back.round)\n\
                try:\n    checkpoint.load(out, '{\"rounds\": 6}', ['a', 'b'])\n    refused = ''\n\
                except bridge.BridgeError as e:\n    refused = str(e)\n\
                print(json.dumps({'round': back.round, 'complete': back.complete, 'dropped': dropped,\n\
                    'model': {k: v.astype(float).tolist() for k, v in back.model.items()}, 'target': back.target,\n\
                    'rounds': json.loads((out / 'flower-rounds.json').read_text()), 'refused': refused}))";
    let model = serde_json::json!({ "a": [0.1f32, -3.25e-7f32, 1.0f32 / 3.0], "b": [[2.5f32], [f32::MIN_POSITIVE]] });
    let target = serde_json::json!([[0.1f64 / 3.0, 0.2f64.sqrt()], [-1e-300, 7.0]]);
    let input = serde_json::json!({ "out": dir.join("out"), "model": model, "target": target });
    let back = run_python(&python, code, &input);
    assert_eq!(back["round"], 2);
    assert_eq!(back["complete"], false);
    assert_eq!(back["model"], model, "the model did not read back exactly");
    assert_eq!(back["target"], target, "the target did not read back exactly");
    assert_eq!(back["dropped"], serde_json::json!([3]));
    assert_eq!(back["rounds"], serde_json::json!([{ "round": 1, "x": 0.1 }, { "round": 2, "x": 0.2 }]));
    assert!(back["refused"].as_str().is_some_and(|m| m.contains("another config")), "{back}");
}

/// A model travels in a message as one array (flower/wsa_flower/packing.py): it unpacks bit for
/// bit with its names, shapes and order; a reply of the digits MLP is fewer objects for the
/// SuperLink to store than with one array per tensor; a record of another length, type or form is
/// refused by a message that says what differs.
#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn a_model_travels_as_one_array_and_unpacks_bit_for_bit() {
    let python = flower_python();
    let code = "import json, sys\nfrom collections import OrderedDict\nimport numpy as np\n\
                from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict\n\
                from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects\n\
                from wsa_flower.packing import pack, unpack\n\
                d = json.load(sys.stdin)\n\
                model = OrderedDict((k, np.array(v, dtype=np.float32)) for k, v in d['model'])\n\
                record, layout = pack(model)\nback = unpack(record, layout)\n\
                objects = lambda arrays: len(get_all_nested_objects(RecordDict({'arrays': arrays, 'metrics': MetricRecord({'n': 1})})))\n\
                per_tensor = ArrayRecord(OrderedDict((k, Array(v)) for k, v in model.items()))\n\
                def refusal(record, layout):\n    try:\n        unpack(record, layout)\n    except ValueError as ex:\n        return str(ex)\n\
                short, _ = pack(OrderedDict(list(model.items())[:-1]))\n\
                wide = ArrayRecord(OrderedDict(model=Array(record['model'].numpy().astype(np.float64))))\n\
                print(json.dumps({'names': list(back), 'shapes': [list(v.shape) for v in back.values()],\n\
                    'same': all(np.array_equal(back[k].view(np.uint32), model[k].view(np.uint32)) for k in model),\n\
                    'packed_objects': objects(record), 'per_tensor_objects': objects(per_tensor),\n\
                    'short': refusal(short, layout), 'per_tensor': refusal(per_tensor, layout),\n\
                    'wide': refusal(wide, layout)}))";
    // The digits MLP's tensors (64-64 hidden), values drawn with awkward bits: subnormals, -0.0.
    let mut rng = Rng::new(5);
    let mut tensor = |rows: usize, cols: usize| -> Value {
        let mut values = |_| {
            let x = (rng.uniform() - 0.5) as f32;
            if x.abs() < 0.01 {
                f32::MIN_POSITIVE / 4.0
            } else if x.abs() < 0.02 {
                -0.0
            } else {
                x
            }
        };
        if cols == 0 {
            serde_json::json!((0..rows).map(&mut values).collect::<Vec<f32>>())
        } else {
            serde_json::json!((0..rows).map(|_| (0..cols).map(&mut values).collect::<Vec<f32>>()).collect::<Vec<_>>())
        }
    };
    // In the engine's order (weight before bias), not sorted: the order must survive too.
    let model = serde_json::json!([
        ["layers.0.weight", tensor(64, 64)],
        ["layers.0.bias", tensor(64, 0)],
        ["layers.1.weight", tensor(64, 64)],
        ["layers.1.bias", tensor(64, 0)],
        ["layers.2.weight", tensor(10, 64)],
        ["layers.2.bias", tensor(10, 0)],
    ]);
    let back = run_python(&python, code, &serde_json::json!({ "model": model }));
    let names: Vec<&Value> = model.as_array().expect("pairs").iter().map(|pair| &pair[0]).collect();
    assert_eq!(back["names"], serde_json::json!(names), "names or their order changed");
    assert_eq!(back["shapes"], serde_json::json!([[64, 64], [64], [64, 64], [64], [10, 64], [10]]));
    assert_eq!(back["same"], true, "a value changed on the way");
    let (packed, per_tensor) =
        (back["packed_objects"].as_u64().expect("n"), back["per_tensor_objects"].as_u64().expect("n"));
    assert!(packed * 2 < per_tensor, "packed: {packed} objects, one array per tensor: {per_tensor}");
    assert!(back["short"].as_str().is_some_and(|m| m.contains("values") && m.contains("needs")), "{back}");
    assert!(back["per_tensor"].as_str().is_some_and(|m| m.contains("packed model")), "{back}");
    assert!(back["wide"].as_str().is_some_and(|m| m.contains("float64") && m.contains("expected float32")), "{back}");
}

fn run_python(python: &Path, code: &str, input: &Value) -> Value {
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", code])
        .env("PYTHONPATH", repo().join("flower"))
        // No __pycache__ left in flower/, the source tree `flwr run` bundles.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write");
    let done = child.wait_with_output().expect("python");
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    serde_json::from_slice(&done.stdout).expect("python printed JSON")
}

#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn the_strategys_fusion_and_average_are_the_engines() {
    let python = flower_python();
    let mut rng = Rng::new(11);
    // Five clients, four layers, scopes of different sizes; one weight zero.
    let scopes: Vec<Vec<Scope>> = (0..5)
        .map(|_| {
            (0..4)
                .map(|l| Scope { mean: (rng.uniform() - 0.5) * 0.1 * (l + 1) as f64, std: 0.01 + rng.uniform() * 0.2 })
                .collect()
        })
        .collect();
    let weights = [120.0, 37.0, 0.0, 501.0, 88.0];
    let input = serde_json::json!({
        "scopes": scopes.iter().map(|s| s.iter().map(|x| [x.mean, x.std]).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "weights": weights,
    });
    for (rule, name) in [
        (FusionRule::MomentMatching, "moment-matching"),
        (FusionRule::PlainAverage, "plain-average"),
        (FusionRule::StdAverage, "std-average"),
        (FusionRule::PrecisionWeighted, "precision-weighted"),
    ] {
        let code = format!(
            "import json, sys\nfrom wsa_flower.scopes import fuse\nd = json.load(sys.stdin)\n\
             print(json.dumps(fuse(d['scopes'], d['weights'], '{name}')))"
        );
        let theirs = run_python(&python, &code, &input);
        let ours = fuse(&scopes, &weights, rule).expect("fuse");
        let theirs: Vec<(f64, f64)> = serde_json::from_value(theirs).expect("pairs");
        assert_eq!(theirs.len(), ours.len());
        for (l, (t, o)) in theirs.iter().zip(&ours).enumerate() {
            assert_eq!(*t, (o.mean, o.std), "{name}, layer {l}");
        }
    }
    // The average of five models (two passes of the engine's four-input kernel) on the CPU.
    let layout = std::sync::Arc::new(ModelLayout::new(&ModelConfig::mlp(vec![7]), &[1, 3, 3], 4).expect("layout"));
    let models: Vec<HostParams> = (0..5).map(|_| layout.init(&mut rng)).collect();
    let device = wsa_core::device::cpu();
    let on_device: Vec<_> = models.iter().map(|m| m.to_device(&device.device)).collect();
    let refs: Vec<_> = on_device.iter().collect();
    let averaged =
        wsa_core::wait(wsa_core::merge::weighted_average(&refs, &weights).expect("average").to_host()).expect("host");
    let input = serde_json::json!({
        "models": models.iter().map(|m| m.values.clone()).collect::<Vec<_>>(),
        "weights": weights,
    });
    let code = "import json, sys\nimport numpy as np\nfrom wsa_flower.scopes import weighted_average\n\
                d = json.load(sys.stdin)\nmodels = [[np.array(t, dtype=np.float32) for t in m] for m in d['models']]\n\
                print(json.dumps([t.astype(float).tolist() for t in weighted_average(models, d['weights'])]))";
    let theirs: Vec<Vec<f32>> = serde_json::from_value(run_python(&python, code, &input)).expect("tensors");
    assert_eq!(theirs, averaged.values, "NumPy's average differs from the engine's");
}

/// The bridge's steps without Flower: a client trains from `init`'s model, and bad input (a
/// model of another architecture, a target of other layers, a client that does not exist, own
/// data for an embedded set) is refused with a message that names it, writing nothing.
#[test]
fn the_bridge_trains_a_client_and_refuses_bad_input_by_name() {
    let dir = temp_dir("bridge");
    let config = write_config(&dir, 3);
    let step = |args: &[&str]| {
        let done = wsa_lab().arg("flower").args(args).args(["--device", "cpu"]).output().expect("run wsa-lab flower");
        (done.status.success(), String::from_utf8_lossy(&done.stderr).into_owned())
    };
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let (config_arg, start) = (path(&config), dir.join("start"));
    let (ok, err) = step(&["init", "--config", &config_arg, "--out", &path(&start)]);
    assert!(ok, "{err}");
    let (global, target) = (path(&start.join("global.safetensors")), path(&start.join("target.json")));
    let train = |client: &str, global: &str, target: &str, extra: &[&str], out: &Path| {
        let mut args = vec!["train", "--config", &config_arg, "--client", client, "--round", "1"];
        args.extend(["--global", global, "--target", target]);
        args.extend(extra);
        let out = path(out);
        args.extend(["--out", &out]);
        step(&args)
    };
    let reply_dir = dir.join("reply");
    let (ok, err) = train("1", &global, &target, &[], &reply_dir);
    assert!(ok, "{err}");
    let reply: Value = serde_json::from_str(&std::fs::read_to_string(reply_dir.join("reply.json")).expect("reply"))
        .expect("reply.json is JSON");
    assert_eq!(reply["client"], 1);
    assert_eq!(reply["scopes"].as_array().map(Vec::len), Some(3), "{reply}");
    assert!(reply["samples"].as_u64().is_some_and(|n| n > 0), "{reply}");
    wsa_core::io::load_model(&reply_dir.join("params.safetensors")).expect("the trained model reads back");

    // A model of another architecture (a wider hidden layer).
    let other = dir.join("other");
    let printed = wsa_lab().args(["fed", "--print-config"]).output().expect("print");
    let mut other_config: Value = serde_json::from_slice(&printed.stdout).expect("json");
    other_config["model"]["hidden"] = serde_json::json!([32]);
    let other_config_path = dir.join("other.json");
    std::fs::write(&other_config_path, other_config.to_string()).expect("write");
    let (ok, err) = step(&["init", "--config", &path(&other_config_path), "--out", &path(&other)]);
    assert!(ok, "{err}");
    let refused = dir.join("refused");
    let (ok, err) = train("0", &path(&other.join("global.safetensors")), &target, &[], &refused);
    assert!(!ok && err.contains("the global model the server sent"), "{err}");
    let (ok, err) = train("0", &global, &path(&other.join("target.json")), &[], &refused);
    assert!(!ok && err.contains("server and clients must run the same config"), "{err}");
    let (ok, err) = train("3", &global, &target, &[], &refused);
    assert!(!ok && err.contains("client 3 does not exist"), "{err}");
    let (ok, err) = train("0", &global, &target, &["--own-data", "/nonexistent"], &refused);
    assert!(!ok && err.contains("is neither"), "{err}");
    assert!(!refused.exists(), "a refused step wrote {}", refused.display());
}

/// The apps' engine (flower/wsa_flower/bridge.py): every step of an app process goes to one
/// `wsa-lab flower serve`, a refused step raises the engine's reason and leaves it serving, and
/// an engine that was killed is started again for the next step.
#[test]
#[ignore = "needs Flower (FLOWER_PYTHON); CI runs it"]
fn the_bridges_engine_serves_every_step_and_starts_again_after_it_died() {
    let python = flower_python();
    let dir = temp_dir("engine");
    let config = write_config(&dir, 3);
    let code = "import json, sys\n\
        from pathlib import Path\n\
        from wsa_flower import bridge\n\
        given = json.load(sys.stdin)\n\
        program, config, out = given['program'], given['config'], Path(given['out'])\n\
        init = bridge.run_step(program, 'init', '--config', config, '--device', 'cpu', '--out', str(out))\n\
        engine = bridge._ENGINES[program]\n\
        first = engine._process.pid\n\
        def train(client, reply):\n\
        \x20   return bridge.run_step(program, 'train', '--config', config, '--device', 'cpu', '--client', client, '--round', '1',\n\
        \x20       '--global', str(out / 'global.safetensors'), '--target', str(out / 'target.json'), '--out', str(out / reply))\n\
        train('0', 'a')\n\
        try:\n\
        \x20   train('7', 'bad')\n\
        \x20   refused = ''\n\
        except bridge.BridgeError as error:\n\
        \x20   refused = str(error)\n\
        train('1', 'b')\n\
        same = engine._process.pid == first\n\
        engine._process.kill(); engine._process.wait()\n\
        train('2', 'c')\n\
        again = engine._process.pid != first\n\
        replies = [json.loads((out / r / 'reply.json').read_text())['client'] for r in ('a', 'b', 'c')]\n\
        bridge.close_engines()\n\
        print(json.dumps({'init': init, 'refused': refused, 'same': same, 'again': again, 'replies': replies}))";
    let input = serde_json::json!({
        "program": env!("CARGO_BIN_EXE_wsa-lab"),
        "config": config.to_string_lossy(),
        "out": dir.join("steps").to_string_lossy(),
    });
    let done = run_python(&python, code, &input);
    assert_eq!(done["init"]["clients"], 3, "{done}");
    let refused = done["refused"].as_str().expect("refused");
    assert!(refused.starts_with("wsa-lab flower train: error: client 7 does not exist"), "{refused}");
    assert_eq!(done["same"], true, "one engine process served init and the three trains: {done}");
    assert_eq!(done["again"], true, "a new engine after the kill: {done}");
    assert_eq!(done["replies"], serde_json::json!([0, 1, 2]), "{done}");
}

/// `wsa-lab flower serve` reads a federation's data once: a client receives the config in a new
/// file every round, and its later rounds train from what the first one read, even with the data
/// file gone (where a one-shot step has to read it again, and fails).
#[test]
fn the_engine_process_reads_a_federations_data_once() {
    let dir = temp_dir("serve-once");
    // A table of 90 rows, three classes: enough for three clients.
    let mut rows = String::from("a,b,c,label\n");
    let mut rng = Rng::new(5);
    for i in 0..90 {
        let class = i % 3;
        let mut x = |offset: f64| class as f64 + offset + rng.uniform() * 0.5;
        let (a, b, c) = (x(0.0), x(1.0), x(2.0));
        rows.push_str(&format!("{a:.4},{b:.4},{c:.4},{class}\n"));
    }
    let table = dir.join("table.csv");
    std::fs::write(&table, rows).expect("write the table");
    let printed = wsa_lab()
        .args(["fed", "--print-config", "--wsa", "--rounds", "2", "--local-epochs", "1", "--clients", "3"])
        .args(["--data", table.to_str().expect("utf-8"), "--label-column", "label"])
        .output()
        .expect("print a config");
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let mut config: Value = serde_json::from_slice(&printed.stdout).expect("json");
    config["local"]["batch_size"] = 4.into();
    let text = config.to_string();
    let config_at = |round: usize| {
        let path = dir.join(format!("round-{round}")).join("fed.json");
        std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
        std::fs::write(&path, &text).expect("write config");
        path.to_string_lossy().into_owned()
    };
    let start = dir.join("start");
    let first = config_at(1);
    let init = wsa_lab().args(["flower", "init", "--device", "cpu", "--config", &first, "--out"]).arg(&start).output();
    let init = init.expect("init");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let reply = |round: usize| dir.join(format!("reply-{round}"));
    let mut serve = Served::start();
    let round_one = serve.step(&train_args(&first, "1", "1", &start, &reply(1)));
    assert_eq!(round_one["ok"], true, "{round_one}");
    std::fs::remove_file(&table).expect("remove the data");
    let second = config_at(2);
    let round_two = serve.step(&train_args(&second, "1", "2", &start, &reply(2)));
    assert_eq!(round_two["ok"], true, "round 2 trained from the data read in round 1: {round_two}");
    let one_shot = wsa_lab().arg("flower").args(train_args(&second, "1", "2", &start, &reply(2))).output();
    let one_shot = one_shot.expect("one-shot train");
    assert!(!one_shot.status.success(), "a one-shot step reads the (removed) data itself");
    serve.close();
}
