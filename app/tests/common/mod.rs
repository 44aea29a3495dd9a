//! What the app's UI tests share: a fresh app in a test harness, a preset chosen by a click, and
//! a background job run to its end. Each test binary uses some of them, hence the allowance below.
#![allow(dead_code)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::{Duration, Instant};
use wsa_lab_app::WsaLabApp;

pub fn harness() -> Harness<'static, WsaLabApp> {
    Harness::builder().with_size([1280.0, 900.0]).build_eframe(|cc| WsaLabApp::new(cc))
}

/// A fresh app after a click on the control labelled `label`.
fn after_clicking(label: &str) -> Harness<'static, WsaLabApp> {
    let mut harness = harness();
    harness.run_steps(2);
    harness.get_by_label(label).click();
    harness.run_steps(2);
    harness
}

/// A fresh app with the preset labelled `preset` chosen by a click.
pub fn with_preset(preset: &str) -> Harness<'static, WsaLabApp> {
    after_clicking(preset)
}

/// A fresh app in the tour, at its first step.
pub fn in_the_tour() -> Harness<'static, WsaLabApp> {
    after_clicking("Tour")
}

/// Steps frames until the background job ends (the worker runs on its own thread).
pub fn wait_for_job(harness: &mut Harness<'_, WsaLabApp>) {
    let started = Instant::now();
    while harness.state().is_busy() {
        assert!(started.elapsed() < Duration::from_secs(120), "the experiment did not finish in 2 minutes");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.step();
    harness.step();
}

/// Clicks the button labelled `button`, checks that it started a background job and waits for
/// the job to end without an error notice.
pub fn run_job(harness: &mut Harness<'_, WsaLabApp>, button: &str) {
    harness.get_by_label(button).click();
    harness.step();
    assert!(harness.state().is_busy(), "`{button}` starts a background job");
    wait_for_job(harness);
    let notices = &harness.state().notices;
    assert!(notices.iter().all(|n| !n.is_error), "{notices:?}");
}
