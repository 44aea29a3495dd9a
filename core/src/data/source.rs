//! Where the files of a user's data set come from. The readers in [`super::files`] parse bytes;
//! reading a file or listing a folder happens only here, behind [`FileSource`]: natively the file
//! system ([`Disk`]), in memory ([`Memory`]) for files a web page holds (dropped or picked: a page
//! has no file system), and on wasm32 the files the page handed over ([`provide_file`]), which is
//! what [`super::load`] reads there.

use crate::error::{Result, WsaError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One entry of a folder: a file or a subfolder, by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub name: String,
    pub is_folder: bool,
}

/// Reads the files a data set names.
pub trait FileSource {
    /// The bytes of the file at `path`.
    fn read(&self, path: &Path) -> Result<Vec<u8>>;
    /// The files and subfolders directly in the folder `dir`, sorted by name.
    fn list(&self, dir: &Path) -> Result<Vec<Entry>>;
}

/// The file system (paths as given, relative to the working directory).
#[derive(Clone, Copy, Debug, Default)]
pub struct Disk;

impl FileSource for Disk {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| WsaError::io(path, e))
    }

    fn list(&self, dir: &Path) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| WsaError::io(dir, e))? {
            let entry = entry.map_err(|e| WsaError::io(dir, e))?;
            // `Path::is_dir` follows links, as opening the files will.
            let is_folder = entry.path().is_dir();
            entries.push(Entry { name: entry.file_name().to_string_lossy().into_owned(), is_folder });
        }
        entries.sort();
        Ok(entries)
    }
}

/// Files held in memory by path; a folder is every path below it. Serde, so that the page can
/// post the files a user dropped to its worker: each file's bytes as base64 text in JSON.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    #[serde(with = "base64_files")]
    files: BTreeMap<PathBuf, Vec<u8>>,
}

/// Each file's bytes as one base64 string (a JSON array of numbers would be three to four times
/// longer and slower to read).
mod base64_files {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    pub fn serialize<S: Serializer>(files: &BTreeMap<PathBuf, Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        let encoded: BTreeMap<&PathBuf, String> = files.iter().map(|(p, b)| (p, BASE64.encode(b))).collect();
        encoded.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<PathBuf, Vec<u8>>, D::Error> {
        let encoded = BTreeMap::<PathBuf, String>::deserialize(deserializer)?;
        encoded
            .into_iter()
            .map(|(path, text)| {
                let bytes = BASE64
                    .decode(text)
                    .map_err(|e| serde::de::Error::custom(format!("file {} is not base64: {e}", path.display())))?;
                Ok((path, bytes))
            })
            .collect()
    }
}

impl Memory {
    /// Adds (or replaces) the file `path`.
    pub fn insert(&mut self, path: impl Into<PathBuf>, bytes: Vec<u8>) {
        self.files.insert(path.into(), bytes);
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Every file, by path.
    pub fn files(&self) -> impl Iterator<Item = (&Path, &[u8])> {
        self.files.iter().map(|(path, bytes)| (path.as_path(), bytes.as_slice()))
    }

    /// Forgets every file.
    pub fn clear(&mut self) {
        self.files.clear();
    }

    fn not_found(path: &Path) -> WsaError {
        WsaError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "not among the files given"))
    }
}

impl FileSource for Memory {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        self.files.get(path).cloned().ok_or_else(|| Self::not_found(path))
    }

    fn list(&self, dir: &Path) -> Result<Vec<Entry>> {
        let mut entries: Vec<Entry> = self
            .files
            .keys()
            .filter_map(|path| {
                let mut rest = path.strip_prefix(dir).ok()?.components();
                let name = rest.next()?.as_os_str().to_string_lossy().into_owned();
                Some(Entry { name, is_folder: rest.next().is_some() })
            })
            .collect();
        entries.sort();
        entries.dedup();
        if entries.is_empty() {
            return Err(Self::not_found(dir));
        }
        Ok(entries)
    }
}

/// The files the page handed over, read by [`super::load`] on wasm32 (where there is no file
/// system); like the downloaded subsets (`small.rs`), data the page writes and the engine reads.
#[cfg(target_arch = "wasm32")]
mod provided {
    use super::Memory;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    static FILES: Mutex<Memory> = Mutex::new(Memory { files: std::collections::BTreeMap::new() });

    pub(super) fn files() -> MutexGuard<'static, Memory> {
        FILES.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands the page's copy of the file `path` (dropped or picked) to [`super::load`], which reads a
/// file data set from these files on wasm32.
#[cfg(target_arch = "wasm32")]
pub fn provide_file(path: impl Into<PathBuf>, bytes: Vec<u8>) {
    provided::files().insert(path, bytes);
}

/// Forgets every file [`provide_file`] handed over (the page dropped a new set).
#[cfg(target_arch = "wasm32")]
pub fn forget_files() {
    provided::files().clear();
}

/// The files handed over by [`provide_file`], as a source.
#[cfg(target_arch = "wasm32")]
struct Provided;

#[cfg(target_arch = "wasm32")]
impl FileSource for Provided {
    fn read(&self, path: &Path) -> Result<Vec<u8>> {
        provided::files().read(path)
    }

    fn list(&self, dir: &Path) -> Result<Vec<Entry>> {
        provided::files().list(dir)
    }
}

/// What [`super::load`] reads a file data set from: the file system natively, the files the page
/// handed over on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub fn default_source() -> Box<dyn FileSource> {
    Box::new(Disk)
}

/// What [`super::load`] reads a file data set from on wasm32: the files the page handed over.
#[cfg(target_arch = "wasm32")]
pub fn default_source() -> Box<dyn FileSource> {
    Box::new(Provided)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_lists_files_and_folders_like_a_disk() {
        let mut memory = Memory::default();
        memory.insert("set/b/2.png", vec![2]);
        memory.insert("set/a/1.png", vec![1]);
        memory.insert("set/a/0.png", vec![0]);
        memory.insert("set/notes.txt", vec![]);
        let listed = memory.list(Path::new("set")).expect("a folder");
        let names: Vec<(&str, bool)> = listed.iter().map(|e| (e.name.as_str(), e.is_folder)).collect();
        assert_eq!(names, [("a", true), ("b", true), ("notes.txt", false)]);
        assert_eq!(memory.list(Path::new("set/a")).expect("a folder").len(), 2);
        assert_eq!(memory.read(Path::new("set/b/2.png")).expect("a file"), vec![2]);
        let err = memory.read(Path::new("set/c.png")).expect_err("absent");
        assert!(err.to_string().contains("set/c.png") && err.to_string().contains("not among"), "{err}");
        assert!(memory.list(Path::new("other")).is_err());
    }
}
