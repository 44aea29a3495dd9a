//! The files a run leaves behind — summary.json, config.json, CSVs, figures and models — as
//! named contents, shared by the CLI and the app's export buttons. Where they go is the caller's:
//! [`write`] puts them into a folder (the CLI, the desktop app); the page zips them into a
//! download.

use crate::describe;
use crate::render::Image;
use crate::{FigureError, Result};
use std::fmt::Write as _;

use wsa_core::checkpoint::Comparison;
use wsa_core::experiment::connect::{ConnectResult, TrainedPair};
use wsa_core::experiment::federated::FedResult;
use wsa_core::io::model_bytes;
use wsa_core::model::HostParams;

/// A set of files: each name (a path relative to the folder) and what it holds.
pub type Files = Vec<(String, Content)>;

fn csv_paths(result: &ConnectResult) -> String {
    let mut s = String::from("method,alpha,loss,accuracy\n");
    for v in &result.methods {
        for p in &v.path {
            let _ = writeln!(s, "{},{},{},{}", v.method, p.alpha, p.loss, p.accuracy);
        }
    }
    s
}

/// Each method's curve, one row per alpha (the first seed's, like paths.csv).
fn csv_curve_paths(result: &ConnectResult) -> String {
    let mut s = String::from("method,curve,alpha,loss,accuracy\n");
    for v in &result.methods {
        if let Some(c) = &v.curve {
            for p in &c.path {
                let _ = writeln!(s, "{},{},{},{},{}", v.method, c.kind.name(), p.alpha, p.loss, p.accuracy);
            }
        }
    }
    s
}

/// Every seed's numbers, one row per seed and method (a run over several seeds).
fn csv_seeds(result: &ConnectResult) -> String {
    let mut s = String::from("seed,method,lambda,accuracy_a,accuracy_b,loss_barrier,accuracy_barrier,scope_distance\n");
    for run in &result.seeds {
        for (v, m) in result.methods.iter().zip(&run.methods) {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{}",
                run.seed,
                v.method,
                v.lambda,
                m.endpoint_a.accuracy,
                m.endpoint_b.accuracy,
                m.barriers.loss,
                m.barriers.accuracy,
                m.scope_distance
            );
        }
    }
    s
}

/// Every seed's paths, one row per seed, method and alpha.
fn csv_seed_paths(result: &ConnectResult) -> String {
    let mut s = String::from("seed,method,alpha,loss,accuracy\n");
    for run in &result.seeds {
        for (v, m) in result.methods.iter().zip(&run.methods) {
            for p in &m.path {
                let _ = writeln!(s, "{},{},{},{},{}", run.seed, v.method, p.alpha, p.loss, p.accuracy);
            }
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
                    v.method,
                    l.path,
                    model,
                    r.count,
                    r.scope.mean,
                    r.scope.std,
                    r.fit.excess_kurtosis,
                    r.fit.ks_distance
                );
            }
            let _ = writeln!(s, "{},{},target,,{},{},,", v.method, l.path, l.target.mean, l.target.std);
        }
    }
    s
}

fn csv_curves(result: &ConnectResult) -> String {
    let mut s = String::from("training,model,epoch,train_loss,test_accuracy\n");
    for p in &result.pairs {
        for c in &p.curves {
            let _ = writeln!(
                s,
                "{},{},{},{},{}",
                p.training.name(),
                c.model.name(),
                c.epoch,
                c.train_loss,
                c.test_accuracy
            );
        }
    }
    s
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| FigureError::from(wsa_core::WsaError::serialize("a result as JSON", e)))
}

/// A result as pretty JSON, with the run's wall time when known.
fn summary_json<T: serde::Serialize>(result: &T, seconds: Option<f64>) -> Result<Vec<u8>> {
    let mut summary = serde_json::to_value(result).map_err(|e| wsa_core::WsaError::serialize("a result as JSON", e))?;
    if let Some(seconds) = seconds {
        summary["seconds"] = serde_json::json!(seconds);
    }
    json(&summary)
}

/// The results as JSON and CSV: summary.json (with `seconds` when known), config.json,
/// paths.csv, layers.csv, curves.csv (the training curves; these three of the first seed),
/// curve-paths.csv when methods trained a mode-connecting curve, and for a run over several
/// seeds seeds.csv and seed-paths.csv.
pub fn connect_tables(result: &ConnectResult, seconds: Option<f64>) -> Result<Files> {
    let mut files = vec![
        bytes("summary.json", summary_json(result, seconds)?),
        bytes("config.json", json(&result.config)?),
        bytes("paths.csv", csv_paths(result).into_bytes()),
        bytes("layers.csv", csv_layers(result).into_bytes()),
        bytes("curves.csv", csv_curves(result).into_bytes()),
    ];
    if result.methods.iter().any(|m| m.curve.is_some()) {
        files.push(bytes("curve-paths.csv", csv_curve_paths(result).into_bytes()));
    }
    if !result.seeds.is_empty() {
        files.push(bytes("seeds.csv", csv_seeds(result).into_bytes()));
        files.push(bytes("seed-paths.csv", csv_seed_paths(result).into_bytes()));
    }
    Ok(files)
}

/// What one exported file holds.
pub enum Content {
    Bytes(Vec<u8>),
    /// A figure, saved as a PNG (natively drawn by [`crate::render::png`]; on the page drawn as
    /// SVG and turned into a PNG by the browser).
    Image(Image),
}

fn bytes(name: &str, bytes: Vec<u8>) -> (String, Content) {
    (name.to_string(), Content::Bytes(bytes))
}

fn image(name: &str, figure: crate::figure::Figure) -> (String, Content) {
    (name.to_string(), Content::Image(Image::Figure(figure)))
}

/// The figures: paths.png and histograms-<method>.png.
pub fn connect_figures(result: &ConnectResult) -> Files {
    let mut files = vec![image("paths.png", describe::paths(result, None, None))];
    for v in &result.methods {
        files.push(image(&format!("histograms-{}.png", v.method), describe::histograms(v)));
    }
    files
}

/// The merged models as models/<method>-{a,b}.safetensors (B after the method's alignment).
pub fn models(models: &[TrainedPair]) -> Result<Files> {
    let mut files = Vec::new();
    for pair in models {
        for (side, params) in [("a", &pair.a), ("b", &pair.b)] {
            let name = format!("models/{}-{side}.safetensors", pair.method);
            files.push(bytes(&name, model_bytes(params)?));
        }
    }
    Ok(files)
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
/// clients.csv, accuracy.png and clients.png.
pub fn federated(result: &FedResult, seconds: Option<f64>) -> Result<Files> {
    let files = vec![
        bytes("summary.json", summary_json(result, seconds)?),
        bytes("config.json", json(&result.config)?),
        bytes("rounds.csv", csv_rounds(result).into_bytes()),
        bytes("clients.csv", csv_clients(result).into_bytes()),
        image("accuracy.png", describe::fed_accuracy(result, None)),
        image("clients.png", describe::client_labels(result)),
    ];
    Ok(files)
}

/// What `wsa-lab plane` leaves: summary.json (`summary`: the plane with its settings),
/// plane.csv (one row per grid point), plane.png (the test loss as a heat map with the models,
/// the line A-B and the curve) and `<name>.safetensors` of each of `models` (those spanning the
/// plane).
pub fn plane(
    plane: &wsa_core::experiment::plane::Plane,
    summary: &serde_json::Value,
    models: &[(&str, &HostParams)],
) -> Result<Files> {
    let mut csv = String::from("x,y,loss,accuracy\n");
    for (j, y) in plane.ys.iter().enumerate() {
        for (i, x) in plane.xs.iter().enumerate() {
            let k = j * plane.xs.len() + i;
            let _ = writeln!(csv, "{x},{y},{},{}", plane.loss[k], plane.accuracy[k]);
        }
    }
    let mut files = vec![
        bytes("summary.json", json(summary)?),
        bytes("plane.csv", csv.into_bytes()),
        image("plane.png", describe::plane(plane, None)),
    ];
    for (name, params) in models {
        files.push(bytes(&format!("{name}.safetensors"), model_bytes(params)?));
    }
    Ok(files)
}

/// What `wsa-lab reproduce` leaves beside its cells: results.md, summary.json (every summary
/// and paired difference), cells.csv (every number of every cell) and one figure per family
/// under `figures`, from `summary` (the report of `records`).
pub fn reproduce(
    summary: &wsa_core::experiment::reproduce::report::Report,
    records: &[wsa_core::experiment::reproduce::CellRecord],
    context: &wsa_core::experiment::reproduce::report::Context,
) -> Result<Files> {
    use wsa_core::experiment::reproduce::report;
    let mut files = vec![
        bytes("results.md", report::markdown(summary, records, context).into_bytes()),
        bytes("summary.json", json(summary)?),
        bytes("cells.csv", csv_cells(records).into_bytes()),
    ];
    for family in &summary.families {
        if let Some(data) = summary.figure(family.family) {
            let name = format!("{}/{}.png", context.figures, family.family.name());
            files.push((name, Content::Image(Image::Forest(crate::forest::Forest { data }))));
        }
        for (index, row) in family.rows.iter().enumerate() {
            if let Some(figure) = row.rounds_figure(index) {
                files.push(image(&format!("{}/{figure}", context.figures), describe::reproduce_rounds(row)));
            }
        }
    }
    Ok(files)
}

/// What `wsa-lab scopes` leaves: scopes.json (everything, histograms included), scopes.csv (one
/// row per tensor, those whose scopes differ most first) and scopes.png (the `top` of them).
pub fn checkpoint_scopes(comparison: &Comparison, top: usize) -> Result<Files> {
    let mut csv = String::from(
        "tensor,shape,dtype_a,dtype_b,symmetric_kl,mean_a,std_a,excess_kurtosis_a,ks_a,non_finite_a,mean_b,std_b,excess_kurtosis_b,ks_b,non_finite_b\n",
    );
    for t in comparison.by_difference() {
        let shape: Vec<String> = t.shape.iter().map(usize::to_string).collect();
        let _ = writeln!(
            csv,
            "\"{}\",{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            t.name.replace('"', "\"\""),
            shape.join("x"),
            t.dtypes[0],
            t.dtypes[1],
            t.symmetric_kl,
            t.a.mean,
            t.a.std,
            t.a.excess_kurtosis,
            t.a.ks_distance,
            t.a.non_finite,
            t.b.mean,
            t.b.std,
            t.b.excess_kurtosis,
            t.b.ks_distance,
            t.b.non_finite
        );
    }
    let mut files = vec![bytes("scopes.json", json(comparison)?), bytes("scopes.csv", csv.into_bytes())];
    if !comparison.tensors.is_empty() {
        files.push(image("scopes.png", describe::checkpoint_scopes(comparison, top)));
    }
    Ok(files)
}

/// Writes `files` into the folder `out` (each atomically: a reader never sees half a file;
/// folders created as needed), figures as PNG. Returns the names written.
#[cfg(feature = "png")]
pub fn write(out: &std::path::Path, files: Files) -> Result<Vec<String>> {
    for (name, content) in &files {
        let png;
        let bytes = match content {
            Content::Bytes(bytes) => bytes,
            Content::Image(image) => {
                png = crate::render::png(image)?;
                &png
            }
        };
        wsa_core::io::write_atomic(&out.join(name), bytes)?;
    }
    Ok(files.into_iter().map(|(name, _)| name).collect())
}

fn csv_cells(records: &[wsa_core::experiment::reproduce::CellRecord]) -> String {
    let mut s = String::from("family,group,row,seed,variant,metric,value,cell\n");
    let quoted = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
    for r in records {
        for v in &r.variants {
            // A run that diverged has no metrics: its round stands in their place.
            let stopped = v.diverged.as_ref().map(|d| ("diverged_in_round".to_string(), d.round as f64));
            for (metric, value) in v.metrics.iter().map(|(m, x)| (m.clone(), *x)).chain(stopped) {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{},{}",
                    r.cell.family.name(),
                    quoted(&r.cell.group),
                    quoted(&r.cell.row),
                    r.cell.seed,
                    v.variant,
                    metric,
                    value,
                    r.hash
                );
            }
        }
    }
    s
}
