//! Files a connect run leaves behind — summary.json, config.json, CSVs, PNG figures and the
//! models — shared by the CLI and the app's export buttons. Every file goes through [`save`]:
//! natively written atomically under the export folder, in a browser downloaded.

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
    let mut s = String::from("variant,alpha,loss,accuracy\n");
    for v in &result.variants {
        for p in &v.path {
            let _ = writeln!(s, "{},{},{},{}", v.name, p.alpha, p.loss, p.accuracy);
        }
    }
    s
}

fn csv_layers(result: &ConnectResult) -> String {
    let mut s = String::from("variant,layer,model,count,mean,std,excess_kurtosis,ks_distance\n");
    for v in &result.variants {
        for l in &v.layers {
            for (model, r) in [("A", &l.a), ("B", &l.b), ("merged", &l.merged)] {
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
    let mut s = String::from("variant,model,epoch,train_loss,test_accuracy\n");
    for v in &result.variants {
        for c in &v.curves {
            let _ = writeln!(s, "{},{},{},{},{}", v.name, c.model, c.epoch, c.train_loss, c.test_accuracy);
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
    let summary = summary_json(result, seconds)?;
    save_all(
        out,
        &[
            ("summary.json", summary),
            ("config.json", json(&result.config)?),
            ("paths.csv", csv_paths(result).into_bytes()),
            ("layers.csv", csv_layers(result).into_bytes()),
            ("curves.csv", csv_curves(result).into_bytes()),
        ],
    )
}

/// Saves each (name, bytes) pair; returns the names.
fn save_all(out: &Path, files: &[(&str, Vec<u8>)]) -> ExportResult<Vec<String>> {
    for (name, bytes) in files {
        save(out, name, bytes)?;
    }
    Ok(files.iter().map(|(name, _)| name.to_string()).collect())
}

/// The figures: paths.png and histograms-<variant>.png. Returns the file names written.
pub fn write_figures(out: &Path, result: &ConnectResult) -> ExportResult<Vec<String>> {
    save(out, "paths.png", &plots::paths_png(result)?)?;
    let mut names = vec!["paths.png".to_string()];
    for v in &result.variants {
        let name = format!("histograms-{}.png", v.name);
        save(out, &name, &plots::histograms_png(v)?)?;
        names.push(name);
    }
    Ok(names)
}

/// The trained models as models/<variant>-{a,b}.safetensors. Returns the file names written.
pub fn write_models(out: &Path, models: &[TrainedPair]) -> ExportResult<Vec<String>> {
    let mut names = Vec::new();
    for pair in models {
        for (side, params) in [("a", &pair.a), ("b", &pair.b)] {
            let name = format!("models/{}-{side}.safetensors", pair.variant);
            save(out, &name, &model_bytes(params).map_err(|e| e.to_string())?)?;
            names.push(name);
        }
    }
    Ok(names)
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
    let summary = summary_json(result, seconds)?;
    save_all(
        out,
        &[
            ("summary.json", summary),
            ("config.json", json(&result.config)?),
            ("rounds.csv", csv_rounds(result).into_bytes()),
            ("clients.csv", csv_clients(result).into_bytes()),
            ("accuracy.png", plots::fed_accuracy_png(result)?),
            ("clients.png", plots::client_labels_png(result)?),
        ],
    )
}
