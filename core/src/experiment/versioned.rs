//! Reading versioned JSON: configs and results carry a `version`; files from older builds are
//! migrated step by step to the current one before serde reads them, and files from newer
//! builds are refused with a message. Every config and result type reads through [`Versioned`].

use crate::error::{Result, WsaError};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::Path;

/// A versioned JSON document of this lab (a config or a result): every one reads through
/// [`Versioned::from_json`] (older versions migrated, newer ones refused, a bad field named)
/// or [`Versioned::read_file`] (the same, with the file named in the error).
pub trait Versioned: DeserializeOwned {
    /// What messages call it, e.g. "connect config".
    const KIND: &'static str;
    /// The version this build writes.
    const VERSION: u32;

    /// Brings a document of version `from` up to [`Self::VERSION`].
    fn migrate(_value: &mut Value, _from: u32) -> Result<()> {
        Ok(())
    }

    fn from_json(text: &str) -> Result<Self> {
        read(text, Self::KIND, Self::VERSION, Self::migrate)
    }

    fn read_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| WsaError::io(path, e))?;
        Self::from_json(&text).map_err(|e| WsaError::InFile { path: path.to_path_buf(), source: Box::new(e) })
    }
}

/// The version of connect configs and results this build writes. 2 added the list of methods
/// (1 always ran plain and WSA) and the per-pair training curves.
pub const CONNECT_VERSION: u32 = 2;

/// The version of federated configs and results this build writes.
pub const FED_VERSION: u32 = 1;

/// Parses `text` as a `what` (e.g. "connect config") of `current` version: an older version is
/// first brought up to date by `migrate(value, from_version)`; a missing version counts as
/// current. Errors name the offending field.
fn read<T: DeserializeOwned>(
    text: &str,
    what: &str,
    current: u32,
    migrate: fn(&mut Value, u32) -> Result<()>,
) -> Result<T> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| WsaError::NotJson { what: what.to_string(), detail: e.to_string() })?;
    let version = match value.get("version") {
        None => current,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| WsaError::invalid(&format!("{what} field `version`"), v, "must be a whole number"))?,
    };
    if version == 0 || version > current {
        return Err(WsaError::invalid(
            &format!("{what} field `version`"),
            version,
            &format!("this build reads versions 1 to {current}; the file comes from another build of WSA Lab"),
        ));
    }
    if version < current {
        migrate(&mut value, version)?;
        value["version"] = json!(current);
    }
    serde_path_to_error::deserialize(value).map_err(|e| WsaError::BadField {
        what: what.to_string(),
        field: e.path().to_string(),
        reason: e.inner().to_string(),
    })
}

/// Connect config 1 -> 2: version 1 always ran the plain and the WSA pair.
pub fn migrate_connect_config(config: &mut Value, from: u32) -> Result<()> {
    if from < 2
        && let Some(object) = config.as_object_mut()
    {
        object.entry("methods").or_insert(json!(["plain", "wsa"]));
        object.insert("version".into(), json!(2));
    }
    Ok(())
}

/// Connect result 1 -> 2: `variants` (plain and wsa, each with its training curves) became
/// `methods`, and the curves moved to `pairs`, one per trained pair.
pub fn migrate_connect_result(result: &mut Value, from: u32) -> Result<()> {
    if from >= 2 {
        return Ok(());
    }
    if let Some(config) = result.get_mut("config") {
        migrate_connect_config(config, from)?;
    }
    let Some(object) = result.as_object_mut() else { return Ok(()) };
    let mut variants = match object.remove("variants") {
        Some(Value::Array(v)) => v,
        _ => Vec::new(),
    };
    let mut pairs = Vec::new();
    for variant in &mut variants {
        let curves = variant.as_object_mut().and_then(|v| v.remove("curves")).unwrap_or(json!([]));
        pairs.push(json!({
            "training": variant.get("name").cloned().unwrap_or(Value::Null),
            "lambda": variant.get("lambda").cloned().unwrap_or(json!(0.0)),
            "curves": curves,
        }));
    }
    object.insert("methods".into(), Value::Array(variants));
    object.insert("pairs".into(), Value::Array(pairs));
    Ok(())
}
