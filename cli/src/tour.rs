//! `wsa-lab tour --worksheet DIR`: the teacher's kit on paper. Runs every step of the guided tour
//! as the app does (the same configs, seeds and variants) and writes the students' worksheet and
//! the teacher's notes, whose expected answers are that run's numbers (`wsa_tour::worksheet`).

use crate::common::check_folder_option;
use crate::progress::Progress;
use anyhow::{Context, Result};
use std::path::PathBuf;
use wsa_core::device;
use wsa_core::experiment::{connect, federated};
use wsa_tour::worksheet::{self, Provenance, StepAnswer};
use wsa_tour::{StepRun, Tour};

#[derive(clap::Args)]
pub struct TourArgs {
    /// Write worksheet.html (the students') and teacher-notes.html (the answers, from a run of
    /// every step) into this folder.
    #[arg(long, value_name = "DIR")]
    worksheet: PathBuf,
    /// auto: a hardware GPU if there is one, else the CPU (the tour's runs are small: the CPU).
    #[arg(long, default_value = "auto")]
    device: String,
    /// The tour to write them for, instead of the shipped one: a translation (tour/tour.de.ron
    /// gives a German worksheet) or a teacher's own.
    #[arg(long, value_name = "FILE")]
    tour_file: Option<PathBuf>,
}

pub fn run(args: TourArgs) -> Result<()> {
    check_folder_option("--worksheet", &args.worksheet)?;
    let tour = match &args.tour_file {
        Some(path) => Tour::read_file(path)?,
        None => Tour::parse(wsa_tour::TOUR_FILE).context("reading the tour")?,
    };
    let choice = args.device.parse()?;
    let mut answers: Vec<StepAnswer> = Vec::with_capacity(tour.steps.len());
    let mut devices: Vec<String> = Vec::new();
    for (index, step) in tour.steps.iter().enumerate() {
        eprintln!("step {} of {}: {}", index + 1, tour.steps.len(), step.title);
        // A step that runs the experiment of an earlier one (the app shows that one's result
        // again) takes its numbers: the same config and seed give the same numbers.
        let earlier = step.connect_config().and_then(|config| {
            answers.iter().find_map(|a| match a {
                StepAnswer::Connect(result) if result.config == *config => Some(result.clone()),
                _ => None,
            })
        });
        if let Some(result) = earlier {
            eprintln!("  the experiment of an earlier step: its run is reused");
            answers.push(StepAnswer::Connect(result));
            continue;
        }
        let mut progress = Progress::new();
        let answer = match (&step.run, step.connect_config(), step.fed_config()) {
            (StepRun::Connect(_) | StepRun::ConnectThenPlane(_), Some(config), _) => {
                let result = run_connect(config, choice, &mut progress, &mut devices)
                    .with_context(|| format!("running tour step {}", index + 1))?;
                StepAnswer::Connect(Box::new(result))
            }
            (StepRun::Federated(_), _, Some(config)) => {
                let device = device::select_for(choice, config.flops_per_step())?;
                let variants = wsa_tour::federated_variants();
                let outcome = wsa_core::wait(federated::run(config, &variants, &device, &mut progress))
                    .with_context(|| format!("running tour step {}", index + 1))?;
                note_device(&mut devices, &outcome.result.device);
                StepAnswer::Federated(Box::new(outcome.result))
            }
            _ => StepAnswer::Nothing,
        };
        progress.finish();
        answers.push(answer);
    }
    // The exercises' runs, for their answers' claims.
    let mut exercise_runs: Vec<Vec<connect::ConnectResult>> = Vec::with_capacity(tour.steps.len());
    for (index, step) in tour.steps.iter().enumerate() {
        let mut runs = Vec::with_capacity(step.exercises.len());
        for (k, exercise) in step.exercises.iter().enumerate() {
            let Some(config) = exercise.config() else { continue };
            eprintln!("step {}, exercise {}", index + 1, k + 1);
            let mut progress = Progress::new();
            let result = run_connect(config, choice, &mut progress, &mut devices)
                .with_context(|| format!("running exercise {} of tour step {}", k + 1, index + 1))?;
            progress.finish();
            runs.push(result);
        }
        exercise_runs.push(runs);
    }
    let mut command = format!("wsa-lab tour --worksheet {} --device {}", args.worksheet.display(), args.device);
    if let Some(path) = &args.tour_file {
        command.push_str(&format!(" --tour-file {}", path.display()));
    }
    let provenance = Provenance { command: &command, device: &devices.join(", "), version: env!("CARGO_PKG_VERSION") };
    std::fs::create_dir_all(&args.worksheet).with_context(|| format!("creating {}", args.worksheet.display()))?;
    let files = [
        ("worksheet.html", worksheet::worksheet(&tour)),
        ("teacher-notes.html", worksheet::teacher_notes(&tour, &answers, &exercise_runs, &provenance)),
    ];
    for (name, html) in files {
        let path = args.worksheet.join(name);
        wsa_core::io::write_atomic(&path, html.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Runs a step's or an exercise's connect experiment on the device `choice` picks for it, as the
/// app does, and notes that device.
fn run_connect(
    config: &connect::ConnectConfig,
    choice: device::DeviceChoice,
    progress: &mut Progress,
    devices: &mut Vec<String>,
) -> Result<connect::ConnectResult> {
    let device = device::select_for(choice, config.flops_per_step())?;
    let outcome = wsa_core::wait(connect::run(config, &device, progress))?;
    note_device(devices, &outcome.result.device);
    Ok(outcome.result)
}

/// Adds `device` to the devices the steps ran on, once each, in the order first used.
fn note_device(devices: &mut Vec<String>, device: &str) {
    if !devices.iter().any(|d| d == device) {
        devices.push(device.to_string());
    }
}
