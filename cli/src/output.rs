//! Files a connect run leaves behind: summary.json, config.json, CSVs, PNGs and the models.
//! Every file is written atomically.

use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;
use wsa_core::experiment::connect::{ConnectOutcome, ConnectResult};
use wsa_core::io::{save_model, write_atomic};

/// The table printed at the end of a run.
pub fn table(result: &ConnectResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<8} {:>7} {:>8} {:>8} {:>13} {:>12} {:>11}",
        "variant", "lambda", "acc A", "acc B", "loss barrier", "acc barrier", "scope dist"
    );
    for v in &result.variants {
        let _ = writeln!(
            s,
            "{:<8} {:>7} {:>8.4} {:>8.4} {:>13.4} {:>12.4} {:>11.5}",
            v.name,
            v.lambda,
            v.endpoint_a.accuracy,
            v.endpoint_b.accuracy,
            v.barriers.loss,
            v.barriers.accuracy,
            v.scope_distance
        );
    }
    s
}

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

/// Writes everything; returns how many files.
pub fn write_connect(out: &Path, outcome: &ConnectOutcome, seconds: f64) -> Result<usize> {
    let result = &outcome.result;
    let mut summary = serde_json::to_value(result)?;
    summary["seconds"] = serde_json::json!(seconds);
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("summary.json", serde_json::to_vec_pretty(&summary)?),
        ("config.json", serde_json::to_vec_pretty(&result.config)?),
        ("paths.csv", csv_paths(result).into_bytes()),
        ("layers.csv", csv_layers(result).into_bytes()),
        ("curves.csv", csv_curves(result).into_bytes()),
        ("paths.png", crate::plot::paths_png(result)?),
    ];
    let mut count = 0;
    for (name, bytes) in &files {
        write_atomic(&out.join(name), bytes)?;
        count += 1;
    }
    for v in &result.variants {
        write_atomic(&out.join(format!("histograms-{}.png", v.name)), &crate::plot::histograms_png(v)?)?;
        count += 1;
    }
    for pair in &outcome.models {
        save_model(&out.join("models").join(format!("{}-a.safetensors", pair.variant)), &pair.a)?;
        save_model(&out.join("models").join(format!("{}-b.safetensors", pair.variant)), &pair.b)?;
        count += 2;
    }
    Ok(count)
}
