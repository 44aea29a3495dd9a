//! The one progress printer of the command line, on stderr: for an experiment a line per stage,
//! epoch and round (on a terminal the epoch, round, path and plane lines rewrite one line in
//! place); for `reproduce` one bar over all cells with an ETA from the cells computed so far (per
//! family, since a federated cell and a Gaussianity cell differ tenfold), which within a cell a
//! terminal follows epoch by epoch. (Ctrl-C simply ends the process: every output file is
//! written atomically at the end.)

use std::io::IsTerminal;
use std::time::Instant;
use wsa_core::cancel::Cancel;
use wsa_core::experiment::reproduce::{Cell, CellProgress, CellRecord, Family, Quarantined};
use wsa_core::experiment::{Event, Observer};

pub struct Progress {
    tty: bool,
    started: Instant,
    /// The bar of a run over a spec's cells; `None` for one experiment.
    cells: Option<CellBar>,
}

impl Progress {
    /// Progress of one experiment, timed from now.
    pub fn new() -> Self {
        Self { tty: std::io::stderr().is_terminal(), started: Instant::now(), cells: None }
    }

    /// A bar over `cells`, of which those `to_compute` says are computed (the others are read
    /// back), timed from `started`.
    pub fn over_cells(cells: &[Cell], to_compute: &[bool], started: Instant) -> Self {
        let bar = CellBar {
            total: cells.len(),
            to_compute: cells.iter().zip(to_compute).filter(|(_, todo)| **todo).map(|(c, _)| c.family).collect(),
            done: 0,
            computed: 0,
            seconds: Vec::new(),
            current: String::new(),
        };
        Self { tty: std::io::stderr().is_terminal(), started, cells: Some(bar) }
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The cells computed (not read back) so far.
    pub fn computed(&self) -> usize {
        self.cells.as_ref().map_or(0, |bar| bar.computed)
    }

    /// Ends the line a terminal rewrites, before the results are printed.
    pub fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }

    /// A line that stays: on a terminal it replaces the line being rewritten.
    fn line(&self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{line}");
    }

    /// A progress line: rewritten in place on a terminal, one line each otherwise.
    fn status(&self, line: &str) {
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    /// An experiment's event as its own line.
    fn experiment_event(&self, event: &Event) {
        let t = self.seconds();
        match event {
            Event::Stage(stage) => self.line(&format!("[{t:6.1}s] {stage}")),
            Event::Seed { index, total, seed } => {
                self.line(&format!("[{t:6.1}s] seed {seed} ({} of {total})", index + 1));
            }
            // The table comes at the end, over every seed.
            Event::SeedResult(_) => {}
            Event::PlaneRow { row, rows } => {
                if self.tty {
                    self.status(&format!("[{t:6.1}s] loss plane row {}/{rows}", row + 1));
                }
            }
            Event::PathPoint { method, index, total } => {
                if self.tty {
                    self.status(&format!("[{t:6.1}s] {method} path {}/{total}", index + 1));
                }
            }
            Event::Epoch { pair, epochs, record } => self.status(&format!(
                "[{t:6.1}s] {:5} {} epoch {:>3}/{epochs}  train loss {:.4}  test acc {:.4}",
                pair.name(),
                record.model.label(),
                record.epoch,
                record.train_loss,
                record.test_accuracy
            )),
            Event::Round { run, round, rounds, test_accuracy } => {
                let done = (20 * round) / (*rounds).max(1);
                let bar = format!("{}{}", "#".repeat(done), ".".repeat(20 - done));
                self.status(&format!(
                    "[{t:6.1}s] {run:12} [{bar}] round {round:>3}/{rounds}  global test acc {test_accuracy:.4}"
                ));
            }
        }
    }
}

impl Cancel for Progress {}

impl Observer for Progress {
    fn on_event(&mut self, event: &Event) {
        let Some(bar) = &self.cells else { return self.experiment_event(event) };
        // Within a cell, only a terminal gets the epoch/round detail (a log gets a line per cell).
        if !self.tty {
            return;
        }
        let detail = match event {
            Event::Epoch { pair, epochs, record } => {
                format!(" · {} {} epoch {}/{epochs}", pair.name(), record.model.label(), record.epoch)
            }
            Event::Round { run, round, rounds, .. } => format!(" · {run} round {round}/{rounds}"),
            Event::PathPoint { method, index, total } => format!(" · {method} path {}/{total}", index + 1),
            Event::Stage(_) | Event::Seed { .. } | Event::SeedResult(_) | Event::PlaneRow { .. } => return,
        };
        self.status(&bar.line(self.seconds(), &detail));
    }
}

impl CellProgress for Progress {
    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn cell_set_aside(&mut self, cell: &Cell, set_aside: &Quarantined) {
        if self.tty {
            eprintln!();
        }
        warn_set_aside(cell, set_aside);
    }

    fn cell_note(&mut self, cell: &Cell, note: &str) {
        self.line(&format!("cell {}: {note}", cell.label()));
    }

    fn cell_started(&mut self, _index: usize, _total: usize, cell: &Cell, cached: bool) {
        let Some(bar) = &mut self.cells else { return };
        bar.current = cell.label();
        if !cached && self.tty {
            let line = bar.line(self.started.elapsed().as_secs_f64(), "");
            self.status(&line);
        }
    }

    fn cell_finished(&mut self, _index: usize, _total: usize, record: &CellRecord, cached: bool) {
        let Some(bar) = &mut self.cells else { return };
        bar.finished(record, cached);
        let how = if cached { "read back".to_string() } else { format!("{:.1} s", record.seconds) };
        let line = bar.line(self.started.elapsed().as_secs_f64(), &format!(" · {how}"));
        self.status(&line);
    }
}

/// The one line that names a damaged cell file when the store sets it aside.
pub fn warn_set_aside(cell: &Cell, set_aside: &Quarantined) {
    eprintln!(
        "warning: the file of cell {} was damaged ({}); it is now {} and the cell is computed again",
        cell.label(),
        set_aside.reason,
        set_aside.file.display()
    );
}

/// Where a run over a spec's cells stands.
struct CellBar {
    total: usize,
    /// The family of every cell still to compute, in order.
    to_compute: Vec<Family>,
    done: usize,
    computed: usize,
    /// Seconds of the computed cells per family, and how many they are.
    seconds: Vec<(Family, f64, usize)>,
    /// The label of the cell running.
    current: String,
}

impl CellBar {
    fn finished(&mut self, record: &CellRecord, cached: bool) {
        self.done += 1;
        if cached {
            return;
        }
        self.computed += 1;
        let family = record.cell.family;
        match self.seconds.iter_mut().find(|(f, _, _)| *f == family) {
            Some(entry) => {
                entry.1 += record.seconds;
                entry.2 += 1;
            }
            None => self.seconds.push((family, record.seconds, 1)),
        }
    }

    /// Seconds left: each remaining cell at its family's mean so far (else the overall mean).
    fn eta(&self) -> Option<f64> {
        let (sum, n) = self.seconds.iter().fold((0.0, 0), |(s, n), (_, t, k)| (s + t, n + k));
        if n == 0 {
            return None;
        }
        let overall = sum / n as f64;
        Some(
            self.to_compute[self.computed.min(self.to_compute.len())..]
                .iter()
                .map(|f| self.seconds.iter().find(|(g, _, _)| g == f).map_or(overall, |(_, t, k)| t / *k as f64))
                .sum(),
        )
    }

    /// The bar after `elapsed` seconds, with `extra` at its end.
    fn line(&self, elapsed: f64, extra: &str) -> String {
        let width = 24;
        let filled = (width * self.done) / self.total.max(1);
        let eta = self.eta().map_or("ETA –".to_string(), |s| format!("ETA {}", duration(s)));
        format!(
            "[{}{}] {}/{} cells · {} · {eta} · {}{extra}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done,
            self.total,
            duration(elapsed),
            self.current
        )
    }
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, (s % 3600) / 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}
