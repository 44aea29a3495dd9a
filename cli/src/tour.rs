//! `wsa-lab tour --worksheet DIR`: the teacher's kit on paper. Runs every step of the guided tour
//! as the app does (the same configs, seeds and variants) and writes the students' worksheet and
//! the teacher's notes, whose expected answers are that run's numbers (`wsa_tour::worksheet`).

use crate::common::check_out_folder;
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
}

pub fn run(args: TourArgs) -> Result<()> {
    check_out_folder(&args.worksheet)?;
    let tour = Tour::parse(wsa_tour::TOUR_FILE).context("reading the tour")?;
    let choice = args.device.parse()?;
    let mut answers = Vec::with_capacity(tour.steps.len());
    let mut devices = Vec::new();
    for (index, step) in tour.steps.iter().enumerate() {
        eprintln!("step {} of {}: {}", index + 1, tour.steps.len(), step.title);
        let mut progress = Progress::new();
        let answer = match (&step.run, step.connect_config(), step.fed_config()) {
            (StepRun::Connect(_) | StepRun::ConnectThenPlane(_), Some(config), _) => {
                let device = device::select_for(choice, config.flops_per_step())?;
                let outcome = wsa_core::wait(connect::run(config, &device, &mut progress))
                    .with_context(|| format!("running tour step {}", index + 1))?;
                devices.push(outcome.result.device.clone());
                StepAnswer::Connect(Box::new(outcome.result))
            }
            (StepRun::Federated(_), _, Some(config)) => {
                let device = device::select_for(choice, config.flops_per_step())?;
                let variants = wsa_tour::federated_variants();
                let outcome = wsa_core::wait(federated::run(config, &variants, &device, &mut progress))
                    .with_context(|| format!("running tour step {}", index + 1))?;
                devices.push(outcome.result.device.clone());
                StepAnswer::Federated(Box::new(outcome.result))
            }
            _ => StepAnswer::Nothing,
        };
        progress.finish();
        answers.push(answer);
    }
    devices.dedup();
    let command = format!("wsa-lab tour --worksheet {} --device {}", args.worksheet.display(), args.device);
    let provenance = Provenance { command: &command, device: &devices.join(", "), version: env!("CARGO_PKG_VERSION") };
    std::fs::create_dir_all(&args.worksheet).with_context(|| format!("creating {}", args.worksheet.display()))?;
    let files = [
        ("worksheet.html", worksheet::worksheet(&tour)),
        ("teacher-notes.html", worksheet::teacher_notes(&tour, &answers, &provenance)),
    ];
    for (name, html) in files {
        let path = args.worksheet.join(name);
        wsa_core::io::write_atomic(&path, html.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
