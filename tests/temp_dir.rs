//! A test's temporary folder, removed when the test passes and kept when it fails (its path
//! printed, for a look at what the run wrote). One file for the cross-crate tests (`lib.rs`)
//! and the CLI's (`cli/tests/*.rs`, which include it by path: each is a crate of its own).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A fresh, empty folder in the system's temporary folder; see the module's comment.
pub struct TempDir(PathBuf);

/// A fresh, empty temporary folder for one test, named after the test binary's crate, `name`
/// and the process (so concurrent runs of the suite do not meet).
pub fn temp_dir(name: &str) -> TempDir {
    let krate = env!("CARGO_CRATE_NAME").trim_start_matches("wsa_lab_");
    let dir = std::env::temp_dir().join(format!("wsa-lab-{krate}-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    TempDir(dir)
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for TempDir {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}
