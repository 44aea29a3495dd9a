//! Files a connect run leaves behind — summary.json, config.json, CSVs, PNG figures and the
//! models — shared by the CLI and the app's export buttons. Natively every file is written
//! atomically under the export folder; in a browser a set of files is one ZIP download.

pub mod plots;

use std::fmt::Write as _;
use std::path::Path;
use wsa_core::experiment::connect::{ConnectResult, TrainedPair};
use wsa_core::experiment::federated::FedResult;
use wsa_core::io::model_bytes;

/// What can go wrong while exporting: a file that cannot be written or a figure that cannot be
/// drawn; the message names the file.
pub type ExportResult<T> = Result<T, String>;

fn csv_paths(result: &ConnectResult) -> String {
    let mut s = String::from("method,alpha,loss,accuracy\n");
    for v in &result.methods {
        for p in &v.path {
            let _ = writeln!(s, "{},{},{},{}", v.name, p.alpha, p.loss, p.accuracy);
        }
    }
    s
}

fn csv_layers(result: &ConnectResult) -> String {
    let mut s = String::from("method,layer,model,count,mean,std,excess_kurtosis,ks_distance\n");
    for v in &result.methods {
        for l in &v.layers {
            let unaligned = l.b_unaligned.as_ref().map(|r| ("B-unaligned", r));
            for (model, r) in [("A", &l.a), ("B", &l.b)].into_iter().chain(unaligned).chain([("merged", &l.merged)]) {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{},{}",
                    v.name, l.path, model, r.count, r.scope.mean, r.scope.std, r.fit.excess_kurtosis, r.fit.ks_distance
                );
            }
            let _ = writeln!(s, "{},{},target,,{},{},,", v.name, l.path, l.target.mean, l.target.std);
        }
    }
    s
}

fn csv_curves(result: &ConnectResult) -> String {
    let mut s = String::from("training,model,epoch,train_loss,test_accuracy\n");
    for p in &result.pairs {
        for c in &p.curves {
            let _ = writeln!(s, "{},{},{},{},{}", p.training.name(), c.model, c.epoch, c.train_loss, c.test_accuracy);
        }
    }
    s
}

fn json<T: serde::Serialize>(value: &T) -> ExportResult<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(|e| format!("serialising JSON: {e}"))
}

/// A result as pretty JSON, with the run's wall time when known.
fn summary_json<T: serde::Serialize>(result: &T, seconds: Option<f64>) -> ExportResult<Vec<u8>> {
    let mut summary = serde_json::to_value(result).map_err(|e| format!("serialising JSON: {e}"))?;
    if let Some(seconds) = seconds {
        summary["seconds"] = serde_json::json!(seconds);
    }
    json(&summary)
}

/// Saves one file: natively `out/name`, written atomically; in a browser a download named
/// after `name` (its folders joined with '-'), since a page cannot write to a folder.
pub fn save(out: &Path, name: &str, bytes: &[u8]) -> ExportResult<()> {
    #[cfg(not(target_arch = "wasm32"))]
    return wsa_core::io::write_atomic(&out.join(name), bytes).map_err(|e| e.to_string());
    #[cfg(target_arch = "wasm32")]
    {
        let _ = out;
        crate::web::download(&name.replace('/', "-"), bytes)
    }
}

/// The results as JSON and CSV: summary.json (with `seconds` when known), config.json,
/// paths.csv, layers.csv, curves.csv. Returns the file names written.
pub fn write_tables(out: &Path, result: &ConnectResult, seconds: Option<f64>) -> ExportResult<Vec<String>> {
    let files = vec![
        bytes("summary.json", summary_json(result, seconds)?),
        bytes("config.json", json(&result.config)?),
        bytes("paths.csv", csv_paths(result).into_bytes()),
        bytes("layers.csv", csv_layers(result).into_bytes()),
        bytes("curves.csv", csv_curves(result).into_bytes()),
    ];
    save_set(out, "results", files)
}

/// What one exported file holds.
pub enum Content {
    Bytes(Vec<u8>),
    /// A figure: a PNG natively; in a browser drawn into one there (see `plots`).
    Figure(plots::Figure),
}

/// Saves a set of files (`set`: "figures", "results", "models"). Natively each is written
/// atomically under `out`; in a browser they become one download, `wsa-lab-<set>.zip`: a page
/// that saves several files at once makes the browser ask first (and headless Chromium
/// dropped all downloads after the tenth). Returns what was saved, for the notice.
fn save_set(out: &Path, set: &str, files: Vec<(String, Content)>) -> ExportResult<Vec<String>> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = set;
        for (name, content) in &files {
            let bytes = match content {
                Content::Bytes(bytes) => bytes,
                Content::Figure(figure) => &figure.png,
            };
            save(out, name, bytes)?;
        }
        Ok(files.into_iter().map(|(name, _)| name).collect())
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = out;
        let archive = format!("wsa-lab-{set}.zip");
        let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
        crate::web::download_archive(&archive, files);
        Ok(vec![format!("{archive} ({})", names.join(", "))])
    }
}

fn bytes(name: &str, bytes: Vec<u8>) -> (String, Content) {
    (name.to_string(), Content::Bytes(bytes))
}

/// The figures: paths.png and histograms-<method>.png. Returns the file names written.
pub fn write_figures(out: &Path, result: &ConnectResult) -> ExportResult<Vec<String>> {
    let mut files = vec![("paths.png".to_string(), Content::Figure(plots::paths(result)?))];
    for v in &result.methods {
        files.push((format!("histograms-{}.png", v.name), Content::Figure(plots::histograms(v)?)));
    }
    save_set(out, "figures", files)
}

/// The merged models as models/<method>-{a,b}.safetensors (B after the method's alignment).
/// Returns the file names written.
pub fn write_models(out: &Path, models: &[TrainedPair]) -> ExportResult<Vec<String>> {
    let mut files = Vec::new();
    for pair in models {
        for (side, params) in [("a", &pair.a), ("b", &pair.b)] {
            let name = format!("models/{}-{side}.safetensors", pair.method);
            files.push(bytes(&name, model_bytes(params).map_err(|e| e.to_string())?));
        }
    }
    save_set(out, "models", files)
}

fn csv_rounds(result: &FedResult) -> String {
    let mut s = String::from("run,round,test_loss,test_accuracy,clients,mean_client_spread\n");
    for run in &result.runs {
        for r in &run.rounds {
            let spread = r.client_spread.iter().sum::<f64>() / r.client_spread.len().max(1) as f64;
            let clients: Vec<String> = r.clients.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "{},{},{},{},{},{}",
                run.name,
                r.round,
                r.test_loss,
                r.test_accuracy,
                clients.join(" "),
                spread
            );
        }
    }
    s
}

fn csv_clients(result: &FedResult) -> String {
    let classes = result.clients.first().map_or(0, |c| c.label_counts.len());
    let mut s = String::from("client,samples,participates");
    for c in 0..classes {
        let _ = write!(s, ",class_{c}");
    }
    s.push('\n');
    for (k, c) in result.clients.iter().enumerate() {
        let _ = write!(s, "{k},{},{}", c.samples, c.participates);
        for n in &c.label_counts {
            let _ = write!(s, ",{n}");
        }
        s.push('\n');
    }
    s
}

/// Everything a federated run leaves behind: summary.json, config.json, rounds.csv,
/// clients.csv, accuracy.png and clients.png. Returns the file names written.
pub fn write_federated(out: &Path, result: &FedResult, seconds: Option<f64>) -> ExportResult<Vec<String>> {
    let files = vec![
        bytes("summary.json", summary_json(result, seconds)?),
        bytes("config.json", json(&result.config)?),
        bytes("rounds.csv", csv_rounds(result).into_bytes()),
        bytes("clients.csv", csv_clients(result).into_bytes()),
        ("accuracy.png".to_string(), Content::Figure(plots::fed_accuracy(result)?)),
        ("clients.png".to_string(), Content::Figure(plots::client_labels(result)?)),
    ];
    save_set(out, "federated", files)
}
