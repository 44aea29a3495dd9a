//! The results of the runs, apart from the settings: the last connect experiment, federation
//! and loss plane, each behind an `Arc`, so that a view or a job holds one without copying it.
//! The views read them; only the app replaces them, when a run finishes. Each is saved then as
//! a versioned file of its own ([`ResultStore`] on the platform's `Shelf`: a folder beside
//! eframe's storage natively, the browser's local storage on the page) and read back at
//! start-up. A saved result that does not read (damaged, or written by another build) is set
//! aside with a notice and the app starts without it.

use crate::AppResult;
use crate::platform::Shelf;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wsa_core::experiment::Versioned;
use wsa_core::experiment::connect::ConnectResult;
use wsa_core::experiment::federated::FedResult;
use wsa_core::experiment::method::Method;
use wsa_core::experiment::plane::Plane;

/// A loss plane and the method whose pair it goes through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlaneResult {
    pub version: u32,
    pub method: Method,
    pub plane: Plane,
}

impl PlaneResult {
    pub fn new(method: Method, plane: Plane) -> Self {
        Self { version: Self::VERSION, method, plane }
    }
}

/// The saved plane; one from a newer build is set aside.
impl Versioned for PlaneResult {
    const KIND: &'static str = "loss plane result";
    const VERSION: u32 = 1;
}

/// The results on screen. Replaced only through the setters, which count the changes
/// ([`Results::revision`]): what is derived from them (the tour's answer) knows when to look
/// again without comparing them.
#[derive(Clone, Debug, Default)]
pub struct Results {
    connect: Option<Arc<ConnectResult>>,
    federated: Option<Arc<FedResult>>,
    plane: Option<Arc<PlaneResult>>,
    revision: u64,
}

/// One of the results, saved on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Federated,
    Plane,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Connect, Kind::Federated, Kind::Plane];

    /// The name the result is saved under.
    pub fn file_name(self) -> &'static str {
        match self {
            Kind::Connect => "connect-result.json",
            Kind::Federated => "federated-result.json",
            Kind::Plane => "plane-result.json",
        }
    }
}

impl Results {
    pub fn connect(&self) -> Option<&ConnectResult> {
        self.connect.as_deref()
    }

    pub fn federated(&self) -> Option<&FedResult> {
        self.federated.as_deref()
    }

    pub fn plane(&self) -> Option<&PlaneResult> {
        self.plane.as_deref()
    }

    /// The connect result, shared: held without copying it.
    pub fn shared_connect(&self) -> Option<Arc<ConnectResult>> {
        self.connect.clone()
    }

    /// How many times the results changed since the app started.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn set_connect(&mut self, result: ConnectResult) {
        self.connect = Some(Arc::new(result));
        self.revision += 1;
    }

    pub fn set_federated(&mut self, result: FedResult) {
        self.federated = Some(Arc::new(result));
        self.revision += 1;
    }

    pub fn set_plane(&mut self, plane: Option<PlaneResult>) {
        self.plane = plane.map(Arc::new);
        self.revision += 1;
    }

    /// The connect result to change in place (copied first if someone else holds it).
    pub fn connect_mut(&mut self) -> Option<&mut ConnectResult> {
        self.revision += 1;
        self.connect.as_mut().map(Arc::make_mut)
    }

    /// The grid point `point` selected on the plane, when the plane is of the method at
    /// `method` (an index into the connect result's methods): then that point's model stands
    /// for the merged model.
    pub fn plane_point_of(&self, method: usize, point: Option<(usize, usize)>) -> Option<(usize, usize)> {
        let name = self.connect()?.methods.get(method)?.method;
        self.plane().filter(|p| p.method == name).and(point)
    }

    /// Takes over each result of `older` that this has none of; returns which it took.
    pub fn adopt(&mut self, older: Results) -> Vec<Kind> {
        let mut taken = Vec::new();
        if self.connect.is_none() && older.connect.is_some() {
            self.connect = older.connect;
            taken.push(Kind::Connect);
        }
        if self.federated.is_none() && older.federated.is_some() {
            self.federated = older.federated;
            taken.push(Kind::Federated);
        }
        if self.plane.is_none() && older.plane.is_some() {
            self.plane = older.plane;
            taken.push(Kind::Plane);
        }
        if !taken.is_empty() {
            self.revision += 1;
        }
        taken
    }

    /// The result of `kind` as its saved text; `None` when there is none.
    fn to_json(&self, kind: Kind) -> AppResult<Option<String>> {
        let text = match kind {
            Kind::Connect => self.connect().map(serde_json::to_string),
            Kind::Federated => self.federated().map(serde_json::to_string),
            Kind::Plane => self.plane().map(serde_json::to_string),
        };
        text.transpose().map_err(|e| wsa_core::WsaError::serialize(kind.file_name(), e).into())
    }

    /// Reads `text` as the result of `kind` (an older version is migrated) into these results.
    fn read(&mut self, kind: Kind, text: &str) -> wsa_core::Result<()> {
        match kind {
            Kind::Connect => self.connect = Some(Arc::new(ConnectResult::from_json(text)?)),
            Kind::Federated => self.federated = Some(Arc::new(FedResult::from_json(text)?)),
            Kind::Plane => self.plane = Some(Arc::new(PlaneResult::from_json(text)?)),
        }
        self.revision += 1;
        Ok(())
    }
}

/// Where the results are kept between sessions: the platform's `Shelf`, or nowhere (an app
/// that eframe gives no storage, as in the UI tests, keeps them in memory only).
pub struct ResultStore {
    shelf: Option<Shelf>,
}

impl ResultStore {
    pub fn new(shelf: Option<Shelf>) -> Self {
        Self { shelf }
    }

    pub fn in_memory() -> Self {
        Self { shelf: None }
    }

    /// Reads every saved result. One that does not read is set aside (it stays for a look, but
    /// is not read again) and the app starts without it; the notice names them all.
    pub fn load(&self) -> (Results, Option<String>) {
        let mut results = Results::default();
        let Some(shelf) = &self.shelf else { return (results, None) };
        let mut problems = Vec::new();
        for kind in Kind::ALL {
            let name = kind.file_name();
            let read = shelf.read(name).and_then(|text| match text {
                Some(text) => Ok(results.read(kind, &text)?),
                None => Ok(()),
            });
            if let Err(e) = read {
                let aside = match shelf.set_aside(name) {
                    Ok(place) => format!("set aside as {place}"),
                    Err(e) => format!("left where it is: {e}"),
                };
                problems.push(format!("{} ({e}), {aside}", shelf.describe(name)));
            }
        }
        let notice =
            (!problems.is_empty()).then(|| format!("Saved results could not be read: {}.", problems.join("; ")));
        (results, notice)
    }

    /// Saves the result of `kind` as `results` holds it now; one that is gone is removed.
    pub fn save(&self, results: &Results, kind: Kind) -> AppResult<()> {
        let Some(shelf) = &self.shelf else { return Ok(()) };
        match results.to_json(kind)? {
            Some(text) => shelf.write(kind.file_name(), &text),
            None => shelf.remove(kind.file_name()),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use wsa_core::experiment::plane::PlanePoint;

    fn folder(test: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wsa-lab-results-{test}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    fn plane() -> PlaneResult {
        let point = |label: &str, x| PlanePoint { label: label.into(), x, y: 0.0 };
        PlaneResult::new(
            Method::WSA,
            Plane {
                xs: vec![0.0, 1.0],
                ys: vec![0.0, 1.0],
                loss: vec![0.5, f64::NAN, 0.25, 1.0],
                accuracy: vec![0.9, 0.1, 0.8, 0.7],
                models: vec![point("A", 0.0), point("B", 1.0)],
                curve: None,
            },
        )
    }

    fn fed() -> FedResult {
        let config = wsa_core::experiment::federated::FedConfig::default();
        FedResult {
            version: FedResult::VERSION,
            config,
            dataset: "digits".into(),
            device: "cpu".into(),
            layers: vec!["hidden.0".into()],
            clients: Vec::new(),
            runs: Vec::new(),
            seeds: Vec::new(),
        }
    }

    #[test]
    fn saved_results_read_back_and_a_removed_one_is_gone() {
        let dir = folder("round-trip");
        let store = ResultStore::new(Some(Shelf::in_folder(dir.clone())));
        let mut results = Results::default();
        results.set_plane(Some(plane()));
        results.set_federated(fed());
        store.save(&results, Kind::Plane).expect("save the plane");
        store.save(&results, Kind::Federated).expect("save the federation");
        store.save(&results, Kind::Connect).expect("nothing to save is no error");
        let (back, notice) = store.load();
        assert_eq!(notice, None);
        assert!(back.connect().is_none());
        assert_eq!(back.federated(), results.federated());
        // NaN is no JSON number: it comes back as NaN through null.
        let (saved, read) = (results.plane().expect("plane"), back.plane().expect("plane read back"));
        assert_eq!(
            (saved.method, &saved.plane.xs, saved.plane.loss[0]),
            (read.method, &read.plane.xs, read.plane.loss[0])
        );
        assert!(read.plane.loss[1].is_nan());
        results.set_plane(None);
        store.save(&results, Kind::Plane).expect("remove the plane");
        assert!(store.load().0.plane().is_none());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A damaged file and one from a newer build are set aside with one notice naming both;
    /// what reads still loads, and the next start is quiet.
    #[test]
    fn damaged_and_foreign_files_are_set_aside_with_one_notice() {
        let dir = folder("damaged");
        let store = ResultStore::new(Some(Shelf::in_folder(dir.clone())));
        let mut results = Results::default();
        results.set_plane(Some(plane()));
        store.save(&results, Kind::Plane).expect("save");
        std::fs::write(dir.join(Kind::Connect.file_name()), "{ \"version\": 2, \"config\": ").expect("write");
        std::fs::write(dir.join(Kind::Federated.file_name()), "{ \"version\": 99 }").expect("write");
        let (back, notice) = store.load();
        let notice = notice.expect("a notice");
        assert!(notice.contains(Kind::Connect.file_name()) && notice.contains(Kind::Federated.file_name()), "{notice}");
        assert!(notice.contains("set aside"), "{notice}");
        assert!(back.connect().is_none() && back.federated().is_none());
        assert!(back.plane().is_some(), "the readable plane still loads");
        assert!(dir.join(format!("{}.unreadable", Kind::Connect.file_name())).is_file());
        let (_, again) = store.load();
        assert_eq!(again, None, "set aside once, not reported again");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Results an older build kept in its settings fill only what the saved files lack.
    #[test]
    fn adopting_older_results_takes_only_what_is_missing() {
        let mut results = Results::default();
        results.set_plane(Some(plane()));
        assert_eq!(results.plane_point_of(0, Some((1, 1))), None, "no connect result, no point");
        let revision = results.revision();
        assert_eq!(results.adopt(Results::default()), Vec::<Kind>::new());
        assert_eq!(results.revision(), revision);
        let mut older = Results::default();
        older.set_federated(fed());
        older.set_plane(None);
        assert_eq!(results.adopt(older), vec![Kind::Federated]);
        assert!(results.revision() > revision);
    }
}
