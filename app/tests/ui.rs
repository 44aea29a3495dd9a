//! The app driven through egui_kittest: choose a preset, run a short experiment on the CPU, see
//! the path and the barriers, select a point on the path, look at its scopes, export.

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use std::time::{Duration, Instant};
use wsa_core::experiment::connect::PairDifference;
use wsa_core::experiment::method::Method;
use wsa_core::experiment::seeds::mean_std;
use wsa_lab_app::WsaLabApp;
use wsa_lab_app::state::SMALL_SET_SEEDS;
use wsa_lab_app::tour::numbered;

mod common;
use common::{harness, in_the_tour, run_job, wait_for_job, with_preset};

/// The cases that draw through wgpu are ignored unless asked for (`--include-ignored`, as
/// `.ci/run` does); asked for, they fail where no wgpu adapter exists.
fn require_wgpu_adapter() {
    assert!(
        !wsa_core::device::list_adapters().is_empty(),
        "this case draws through wgpu, and this machine has no wgpu adapter (on Debian: mesa-vulkan-drivers, lavapipe)"
    );
}

#[test]
fn preset_run_select_a_point_and_export() {
    let mut harness = with_preset("Different random starts");
    assert_eq!(harness.state().settings.config.pair, PairDifference::Seed { same_init: false });
    // Keep the run short: the point is the UI, not the numbers.
    harness.state_mut().settings.config.train.epochs = 3;
    // Add post-hoc rescaling to the default methods with its toggle.
    harness.get_by_label("rescale").click();
    harness.run_steps(2);
    let methods = &harness.state().settings.config.methods;
    assert_eq!(methods, &[Method::PLAIN, Method::WSA, Method::WM, Method::WM_WSA, Method::RESCALE]);

    run_job(&mut harness, "Run");
    let result = harness.state().results.connect().cloned().expect("a result after the run");

    // The preset runs over three seeds, and the path view shows both barriers of every method
    // as mean ± std over them.
    harness.get_by_label("loss barrier");
    harness.get_by_label("accuracy barrier");
    assert_eq!(result.seeds.len(), SMALL_SET_SEEDS);
    let spread = result.over_seeds().expect("a spread over three seeds");
    for v in &spread {
        let loss = mean_std(&v.loss_barrier, 4);
        let accuracy = mean_std(&v.accuracy_barrier, 4);
        assert!(loss.contains(" ± "), "{loss}");
        assert!(harness.query_all_by_label(&loss).count() >= 1, "loss barrier {loss} of {} not shown", v.method);
        assert!(harness.query_all_by_label(&accuracy).count() >= 1, "accuracy barrier {accuracy} not shown");
    }
    // One seed is one click away: the table then shows its own barriers.
    let second = &result.seeds[1];
    harness.get_by_label(&format!("seed {}", second.seed)).click();
    harness.run_steps(2);
    assert_eq!(harness.state().settings.path_seed, Some(1));
    for (v, m) in result.methods.iter().zip(&second.methods) {
        let loss = format!("{:.4}", m.barriers.loss);
        assert!(
            harness.query_all_by_label(&loss).count() >= 1,
            "seed 1's loss barrier {loss} of {} not shown",
            v.method
        );
    }
    harness.get_by_label_contains("mean of seeds").click();
    harness.run_steps(2);
    assert_eq!(harness.state().settings.path_seed, None);

    // Select the next point on the path with the slider (keyboard), as a user can.
    let before = harness.state().settings.alpha_index;
    harness.get_by_role_and_label(Role::Slider, "selected point on the path").focus();
    harness.step();
    harness.key_press(egui::Key::ArrowRight);
    harness.run_steps(2);
    let after = harness.state().settings.alpha_index;
    assert_eq!(after, before + 1);
    let alpha = result.methods[0].path[after].alpha;
    harness.get_by_label_contains(&format!("Selected merged model: α = {alpha:.3}"));

    // The selection follows into the scopes view.
    harness.get_by_label("Weight scopes").click();
    harness.run_steps(2);
    let merged = format!("merged, α = {alpha:.2}");
    assert!(harness.query_all_by_label(&merged).count() >= 1, "the scopes view does not show `{merged}`");
    // For weight matching it shows B before alignment and what the alignment did.
    harness.state_mut().settings.method = 2;
    harness.run_steps(2);
    assert!(harness.query_all_by_label("B before alignment").count() >= 1, "no unaligned B for wm");
    assert!(harness.query_all_by_label_contains("aligned to A by weight matching").count() >= 1);

    // Export from the Files tab.
    let dir = std::env::temp_dir().join(format!("wsa-lab-ui-export-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    harness.state_mut().settings.export_dir = dir.display().to_string();
    harness.get_by_label("Files").click();
    harness.run_steps(2);
    harness.get_by_label("Export results (CSV/JSON)").click();
    harness.run_steps(2);
    harness.get_by_label("Export figures (PNG)").click();
    harness.run_steps(2);
    harness.get_by_label("Save models (safetensors)").click();
    harness.run_steps(2);
    for file in [
        "summary.json",
        "paths.csv",
        "seeds.csv",
        "seed-paths.csv",
        "paths.png",
        "histograms-wsa.png",
        "histograms-wm+wsa.png",
        "histograms-rescale.png",
        "models/plain-a.safetensors",
        "models/wm-b.safetensors",
    ] {
        assert!(dir.join(file).is_file(), "{file} was not exported; notices: {:?}", harness.state().notices);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_that_does_not_fit_is_refused_with_a_message() {
    let mut harness = harness();
    harness.state_mut().settings.config.train.epochs = 1;
    harness.run_steps(2);
    harness.get_by_label("Run").click();
    harness.step();
    wait_for_job(&mut harness);

    // A model of another architecture: a wider MLP.
    let dir = std::env::temp_dir().join(format!("wsa-lab-ui-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let layout =
        wsa_core::model::ModelLayout::new(&wsa_core::model::ModelConfig::mlp(vec![8]), &[1, 8, 8], 10).expect("layout");
    let other = std::sync::Arc::new(layout).init(&mut wsa_core::rng::Rng::new(1));
    let file = dir.join("other.safetensors");
    wsa_core::io::save_model(&file, &other).expect("save");

    harness.state_mut().settings.model_path = file.display().to_string();
    harness.get_by_label("Files").click();
    harness.run_steps(2);
    harness.get_by_label("Load into B").click();
    harness.run_steps(2);
    let notices = &harness.state().notices;
    assert!(
        notices.iter().any(|n| n.is_error && n.text.contains("slot B") && n.text.contains("hidden.0.weight")),
        "{notices:?}"
    );
    assert!(!harness.state().is_busy(), "nothing was started");

    // The right architecture loads and the pair is re-evaluated in the background.
    let own = harness.state().models.pairs[1].a.clone();
    let file = dir.join("own.safetensors");
    wsa_core::io::save_model(&file, &own).expect("save");
    harness.state_mut().settings.model_path = file.display().to_string();
    harness.get_by_label("Load into B").click();
    harness.step();
    wait_for_job(&mut harness);
    let result = harness.state().results.connect().cloned().expect("result");
    // B is now a copy of A: the path is flat and both barriers vanish.
    assert!(result.methods[1].barriers.loss.abs() < 1e-9 && result.methods[1].barriers.accuracy.abs() < 1e-9);
    std::fs::remove_dir_all(&dir).ok();
}

/// With eframe drawing through wgpu, a GPU job trains on the renderer's own device: one GPU
/// device for drawing and training. Runs on any wgpu adapter (lavapipe on CI).
#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn a_gpu_job_shares_the_renderers_device() {
    require_wgpu_adapter();
    // The test renderer's device is created the way the app creates its window's.
    let setup = wsa_lab_app::wgpu_configuration().wgpu_setup;
    let mut harness =
        Harness::builder().with_size([1280.0, 900.0]).wgpu_setup(setup).build_eframe(|cc| WsaLabApp::new(cc));
    harness.state_mut().settings.device = wsa_core::device::DeviceChoice::Gpu;
    harness.state_mut().settings.config.train.epochs = 1;
    harness.state_mut().settings.config.data.max_train = Some(256);
    harness.run_steps(2);
    harness.get_by_label("Run").click();
    harness.step();
    wait_for_job(&mut harness);
    let state = harness.state();
    assert!(state.notices.iter().all(|n| !n.is_error), "{:?}", state.notices);
    assert!(state.jobs.device_label.contains("shared with the renderer"), "trained on: {}", state.jobs.device_label);
    let result = state.results.connect().expect("result");
    assert!(result.device.contains("shared with the renderer"));
    // The same experiment on the CPU gives the same numbers, to f32 rounding.
    let cpu = wsa_core::wait(wsa_core::experiment::connect::run(
        &result.config,
        &wsa_core::device::cpu(),
        &mut wsa_core::cancel::Silent,
    ))
    .expect("CPU run")
    .result;
    let one_sample = 1.0 / result.test_samples as f64;
    for (gpu, cpu) in result.methods.iter().zip(&cpu.methods) {
        for (g, c) in [(gpu.endpoint_a, cpu.endpoint_a), (gpu.endpoint_b, cpu.endpoint_b)] {
            assert!((g.accuracy - c.accuracy).abs() <= one_sample + 1e-9, "{}: GPU {g:?} vs CPU {c:?}", gpu.method);
            assert!((g.loss - c.loss).abs() < 1e-3, "{}: GPU {g:?} vs CPU {c:?}", gpu.method);
        }
        assert!((gpu.barriers.loss - cpu.barriers.loss).abs() < 1e-3, "{}", gpu.method);
    }
}

/// "Save PNG" under a plot writes that plot, as drawn, into the export folder.
#[test]
#[ignore = "needs a wgpu adapter; CI runs it (lavapipe)"]
fn a_plot_is_saved_as_png_as_shown() {
    require_wgpu_adapter();
    let mut harness = Harness::builder().with_size([1280.0, 900.0]).wgpu().build_eframe(|cc| WsaLabApp::new(cc));
    harness.state_mut().settings.config.train.epochs = 1;
    let dir = std::env::temp_dir().join(format!("wsa-lab-ui-png-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    harness.state_mut().settings.export_dir = dir.display().to_string();
    harness.run_steps(2);
    harness.get_by_label("Run").click();
    harness.step();
    wait_for_job(&mut harness);
    let buttons: Vec<_> = harness.query_all_by_label("Save PNG").collect();
    assert_eq!(buttons.len(), 2, "one button under each path plot");
    buttons[0].click();
    for _ in 0..6 {
        harness.step();
    }
    let file = dir.join("path-test-loss.png");
    assert!(file.is_file(), "no PNG written; notices: {:?}", harness.state().notices);
    let bytes = std::fs::read(&file).expect("read");
    assert_eq!(&bytes[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).ok();
}

/// The federated view: run the four-method comparison on digits, see each method's row and the
/// client bars.
#[test]
fn federated_comparison_from_the_app() {
    let mut harness = harness();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "Federated").click();
    harness.run_steps(2);
    {
        let fed = &mut harness.state_mut().settings.fed;
        fed.clients = 3;
        fed.rounds = 2;
        fed.local.epochs = 1;
    }
    harness.get_by_label("Run federated").click();
    harness.step();
    assert!(harness.state().is_busy());
    wait_for_job(&mut harness);
    let notices = &harness.state().notices;
    assert!(notices.iter().all(|n| !n.is_error), "{notices:?}");
    let result = harness.state().results.federated().cloned().expect("federated result");
    assert_eq!(result.runs.len(), 4);
    for run in &result.runs {
        assert!(harness.query_all_by_label(&run.name).count() >= 1, "{} not shown", run.name);
        assert!(harness.query_all_by_label(&format!("{:.4}", run.final_accuracy)).count() >= 1);
    }
    assert_eq!(result.clients.iter().map(|c| c.samples).sum::<usize>(), 1348);
}

/// Views only draw: with a 2-D preset's decision regions open, the map is computed off the UI
/// thread, and no frame takes more than 16 ms (the app's own frame log, which times the whole
/// frame as eframe runs it: `logic()`, where derived data is brought up to date, and `ui()`),
/// the frame that asked for the map included.
#[test]
fn the_regions_view_never_blocks_a_frame() {
    let mut harness = with_preset("Moons (2-D): different random starts");
    harness.state_mut().settings.config.train.epochs = 2;
    harness.get_by_label("Run").click();
    harness.step();
    wait_for_job(&mut harness);
    harness.state_mut().frames = Default::default();
    harness.get_by_label("Decision regions").click();
    let started = Instant::now();
    while harness.query_by_label_contains("test accuracy of this model").is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "the regions did not appear within a minute");
        std::thread::sleep(Duration::from_millis(5));
        harness.step();
    }
    harness.run_steps(3);
    let build_ms = &harness.state().frames.build_ms;
    let frames: Vec<f32> = build_ms.iter().copied().collect();
    assert!(frames.len() >= 2, "{frames:?}");
    let slowest = frames.iter().copied().fold(0.0, f32::max);
    eprintln!("regions view: {} frames, slowest {slowest:.2} ms (logic and UI)", frames.len());
    assert!(slowest < 16.0, "a frame took {slowest:.1} ms: {frames:?}");
}

#[test]
fn curves_are_trained_from_the_setup_and_shown_per_seed() {
    let mut harness = with_preset("Different random starts");
    harness.state_mut().settings.config.train.epochs = 3;
    harness.get_by_label("a trained curve beside each line").click();
    harness.run_steps(2);
    assert!(harness.state().settings.config.curve.is_some(), "the checkbox turns curves on");
    run_job(&mut harness, "Run");
    let result = harness.state().results.connect().cloned().expect("a result");
    assert!(result.methods.iter().all(|m| m.curve.is_some()), "every method has its curve");
    // Over three seeds the mean view has no curve (they are not averaged) and says where they are.
    harness.get_by_label_contains("Curves are drawn per seed");
    harness.get_by_label(&format!("seed {}", result.seeds[0].seed)).click();
    harness.run_steps(2);
    harness.get_by_label("loss barrier: line → curve");
    let plain = &result.seeds[0].methods[0];
    let curve = plain.curve.as_ref().expect("seed 0's plain curve");
    let cell = format!("{:.4} → {:.4}", plain.barriers.loss, curve.barriers.loss);
    assert!(harness.query_all_by_label(&cell).count() >= 1, "`{cell}` not shown");
}

#[test]
fn the_loss_plane_is_computed_in_the_background_and_drawn() {
    let mut harness = with_preset("Different random starts");
    harness.state_mut().settings.config.train.epochs = 3;
    harness.state_mut().settings.config.seeds = 1;
    run_job(&mut harness, "Run");
    harness.get_by_label("Loss plane").click();
    harness.run_steps(2);
    harness.state_mut().settings.plane.grid = 6;
    run_job(&mut harness, "Compute the plane");
    let wsa_lab_app::results::PlaneResult { method, plane, .. } =
        harness.state().results.plane().cloned().expect("a plane");
    assert_eq!(
        method,
        harness.state().results.connect().expect("result").methods[harness.state().settings.method].method
    );
    assert_eq!((plane.xs.len(), plane.ys.len(), plane.loss.len()), (6, 6, 36));
    assert!(plane.loss.iter().all(|l| l.is_finite() && *l > 0.0));
    assert!(plane.curve.is_some() && plane.models.len() == 3);
    harness.get_by_label_contains("over 36 points");
    // The colour bar reads a colour as a loss: its ends are the plane's lowest and highest loss.
    harness.get_by_label("test loss (log scale):");
    let (best, worst) = plane.loss_range();
    for end in [best, worst] {
        assert!(harness.query_all_by_label(&format!("{end:.3}")).count() >= 1, "colour bar end {end:.3} not shown");
    }
    // The progress counted the grid's rows.
    assert_eq!((harness.state().jobs.live.path_points_done, harness.state().jobs.live.total), (6, 6));

    // A click on the plane (below the line above it, in the heat map) selects the nearest grid
    // point, whose model the Weight scopes tab then shows in place of the merged model. The
    // plane is drawn on equal scales, so the heat map's band lies somewhere down the plot: the
    // clicks go down until one lands on it (a click beside it selects nothing).
    let above = harness.get_by_label("No point selected.").rect();
    for down in (150..=450).step_by(50) {
        let at = egui::pos2(above.center().x.max(600.0), above.bottom() + down as f32);
        harness.hover_at(at);
        for pressed in [true, false] {
            harness.event(egui::Event::PointerButton {
                pos: at,
                button: egui::PointerButton::Primary,
                pressed,
                modifiers: egui::Modifiers::default(),
            });
        }
        harness.run_steps(2);
        if harness.state().settings.plane_point.is_some() {
            break;
        }
    }
    let (i, j) = harness.state().settings.plane_point.expect("a click on the heat map selected a grid point");
    harness.get_by_label_contains("selected (");
    harness.get_by_label("Show its weight scopes").click();
    harness.run_steps(3);
    assert_eq!(harness.state().settings.tab, wsa_lab_app::state::Tab::Scopes);
    harness.get_by_label_contains("in place of the merged model");
    // The table's row is that point's model: A + w_B (B − A) + w_θ (θ − A), computed here.
    let state = harness.state();
    let pair = &state.models.pairs[state.settings.method];
    let third = state.models.plane_third.as_ref().expect("the plane's control point is in memory");
    let model = plane.model_at((&pair.a, &pair.b, third), plane.xs[i], plane.ys[j]).expect("the point's model");
    let layer = &state.results.connect().expect("result").methods[state.settings.method].layers[0].path;
    let scope = wsa_core::scope::scope_of(model.get(layer).expect("the layer"));
    let row = format!("plane point ({:.2}, {:.2})", plane.xs[i], plane.ys[j]);
    // (The row's name is also the histogram's legend entry.)
    for shown in [row.clone(), format!("{:+.5}", scope.mean), format!("{:.5}", scope.std)] {
        assert!(harness.query_all_by_label(&shown).count() >= 1, "`{shown}` not shown");
    }
    // Choosing a point on the path again brings the merged model back.
    harness.get_by_label("Show the path's merged model").click();
    harness.run_steps(3);
    assert_eq!(harness.state().settings.plane_point, None);
    assert_eq!(harness.query_all_by_label(&row).count(), 0);
}

#[test]
fn the_tour_walks_through_every_step_and_its_claims_hold() {
    let mut harness = in_the_tour();
    let timings = walk_the_tour(&mut harness, &|_, _| ());
    eprintln!("tour, natively (seconds from Run to the answer): {timings:?}");
    // Leaving keeps the last experiment; a link to a step that does not exist opens the first.
    harness.get_by_label("Leave the tour").click();
    harness.run_steps(2);
    assert_eq!(harness.state().tour.step(), None);
    harness.state_mut().open_tour_link("99");
    harness.run_steps(2);
    assert_eq!(harness.state().tour.step(), Some(0));
    assert!(harness.state().notices.iter().any(|n| n.text.contains("does not exist")), "a notice");
}

/// The tour in a pseudo-locale (every text of the tour file transformed: vowels accented, each
/// text in ‹ ›), read from a file as a translation is, and walked through every step, its
/// exercises, its glossary and its list of keys: every control is found by its transformed
/// words, and every text in the tour's panel comes from the file. A word left in the code would
/// show untransformed and fail the walk.
#[test]
fn no_word_of_the_tour_is_left_in_the_code() {
    let english = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tour/tour.ron")).expect("tour.ron");
    let dir = std::env::temp_dir().join(format!("wsa-pseudo-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let file = dir.join("tour.xx.ron");
    std::fs::write(&file, pseudo_locale(&english)).expect("written");
    let tour = wsa_lab_app::tour::Tour::read_file(&file).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let words = tour.words.panel.clone();
    assert_eq!(words.next, "‹Néxt ▶›", "the pseudo-locale transforms the tour's words");
    let in_the_tour = || {
        let mut harness = harness();
        harness.state_mut().use_tour(tour.clone());
        harness.run_steps(2);
        harness.get_by_label(&words.start).click();
        harness.run_steps(2);
        harness
    };
    // The list of keys (?) and the glossary (a step's term, clicked), in the tour's words too.
    let mut harness = in_the_tour();
    harness.key_press(egui::Key::Questionmark);
    harness.run_steps(2);
    for (_, what) in wsa_lab_app::tour::keys(&words) {
        harness.get_by_label(what);
    }
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    let term = tour.terms_of(&tour.steps[0])[0].clone();
    harness.get_by_role_and_label(Role::Button, &term.term).click();
    harness.run_steps(3);
    for term in &tour.glossary {
        harness.get_by_label(&term.meaning);
    }
    // The walk, in a fresh window (the glossary's would cover the tour's buttons).
    let mut harness = in_the_tour();
    let walked = walk_the_tour(&mut harness, &|harness, when| only_the_tours_words(harness, &words.start, when));
    assert!(!walked.is_empty(), "steps were run");
}

/// The tests' pseudo-locale of a tour file: every text a translator translates (the steps',
/// the exercises', the glossary's and every word in `words`) with its vowels accented and put in
/// ‹ ›, names in braces kept; a glossary term only accented, so that the texts still use it.
/// The runs' JSON, the claims and the marks are left as they are.
fn pseudo_locale(file: &str) -> String {
    let accent = |text: &str, wrap: bool| {
        let mut out = String::new();
        let mut in_name = false;
        for c in text.chars() {
            in_name = match c {
                '{' => true,
                '}' => false,
                _ => in_name,
            };
            let accented = "aeiouAEIOU".find(c).map(|k| "áéíóúÁÉÍÓÚ".chars().nth(k).expect("ten vowels"));
            out.push(if in_name { c } else { accented.unwrap_or(c) });
        }
        if wrap { format!("‹{out}›") } else { out }
    };
    let translated = ["title", "text", "predict", "look", "task", "answer", "meaning"];
    let words_start = file.find("\n    words: (").expect("the tour file has its words");
    let mut out = String::new();
    let mut rest = 0;
    // Each `key: "text"` (escaped quotes inside); raw strings (`r#"`) are the runs' JSON.
    while let Some(found) = file[rest..].find(": \"") {
        let open = rest + found + 3;
        let key_start = file[..rest + found].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |k| k + 1);
        let key = &file[key_start..rest + found];
        let mut close = open;
        let bytes = file.as_bytes();
        while bytes[close] != b'"' {
            close += if bytes[close] == b'\\' { 2 } else { 1 };
        }
        let text = &file[open..close];
        let changed = if key == "term" {
            accent(text, false)
        } else if translated.contains(&key) || (open > words_start) {
            accent(text, true)
        } else {
            text.to_string()
        };
        out.push_str(&file[rest..open]);
        out.push_str(&changed);
        rest = close;
    }
    out.push_str(&file[rest..]);
    out.replacen("language: \"en\"", "language: \"xx\"", 1)
}

/// Every text in the tour's panel (the region labelled `region`) comes from the tour file: with
/// the pseudo-locale, nothing outside ‹ › has an unaccented vowel.
fn only_the_tours_words(harness: &Harness<'_, WsaLabApp>, region: &str, when: &str) {
    let panel = harness.get_by_label(region);
    let mut seen = Vec::new();
    for node in panel.children_recursive() {
        let node = node.accesskit_node();
        // A wrapped label's rows are text runs under it: the label holds the whole text.
        if node.role() == Role::TextRun {
            continue;
        }
        for text in [node.label(), node.value()].into_iter().flatten() {
            seen.push(text.clone());
            let mut outside = String::new();
            let mut depth = 0usize;
            for c in text.chars() {
                match c {
                    '‹' => depth += 1,
                    '›' => depth = depth.saturating_sub(1),
                    _ if depth == 0 => outside.push(c),
                    _ => {}
                }
            }
            let left = outside.split(|c: char| !c.is_alphabetic()).find(|w| w.contains(|c| "aeiouAEIOU".contains(c)));
            assert!(left.is_none(), "{when}: `{text}` in the tour's panel is not from the tour file");
        }
    }
    // The region is the panel: the open step's title and text are among what it holds.
    let (_, step) = harness.state().tour.open_step().expect("a step is open");
    for shown in [&step.title, &step.text] {
        assert!(seen.contains(shown), "{when}: `{shown}` is not in the region `{region}`: {seen:?}");
    }
}

/// Walks the open tour (at its first step) through every step as a class would: each step's
/// texts on screen, its run answering it with every claim held on every seed, its view open
/// with the marked element, its exercises answered; every control found by the tour's words.
/// `check(harness, when)` looks at the screen before and after each run. Returns each run's
/// seconds from Run to the answer, by step number.
fn walk_the_tour(
    harness: &mut Harness<'static, WsaLabApp>,
    check: &dyn Fn(&Harness<'static, WsaLabApp>, &str),
) -> Vec<(usize, f64)> {
    let steps = harness.state().tour.steps().to_vec();
    let words = harness.state().tour.tour().words.panel.clone();
    let mut timings = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(harness.state().tour.step(), Some(i), "step {}", i + 1);
        harness.get_by_label(&step.title);
        harness.get_by_label(&step.text);
        check(harness, &format!("step {}, before its run", i + 1));
        if let Some(config) = step.connect_config() {
            assert_eq!(&harness.state().settings.config, config, "step {} loads its experiment", i + 1);
        }
        if !matches!(step.run, wsa_lab_app::tour::StepRun::Free) {
            // The setup says the step set it, in the tour's words.
            harness.get_by_label(&words.set_by_tour);
            // (No step runs its predecessor's experiment, so no step opens answered: the tour file is
            // refused otherwise.)
            assert!(!wsa_lab_app::tour::answered(step, &harness.state().results), "step {} opens answered", i + 1);
            {
                assert!(harness.query_all_by_label(&step.predict).count() >= 1, "step {}: the question", i + 1);
                harness.get_by_label(&words.run).click();
                let started = Instant::now();
                // A plane step's plane follows its experiment as a second job.
                while !wsa_lab_app::tour::answered(step, &harness.state().results) || harness.state().is_busy() {
                    assert!(started.elapsed() < Duration::from_secs(300), "step {} did not finish", i + 1);
                    std::thread::sleep(Duration::from_millis(20));
                    harness.step();
                }
                harness.run_steps(3);
                timings.push((i + 1, harness.state().tour.run_seconds().expect("the step's run was timed")));
            }
            let notices = &harness.state().notices;
            assert!(notices.iter().all(|n| !n.is_error), "step {}: {notices:?}", i + 1);
            assert_eq!(harness.state().settings.tab, step.view, "step {} opens its view", i + 1);
            // The marked element is in the view, beside the step's result.
            let marks = [&words.look_here, &words.look_here_curve, &words.look_here_layer, &words.look_here_plane];
            assert!(
                marks.iter().map(|mark| harness.query_all_by_label(&format!("▶ {mark}")).count()).sum::<usize>() >= 1,
                "step {}: nothing marked in {:?}",
                i + 1,
                step.view
            );
            harness.get_by_label(&step.look);
            // Every claim the text makes held on every seed (or histogram) of this run.
            if let Some(result) = harness.state().results.connect() {
                for check in step.check_claims(result) {
                    assert!(check.holds_everywhere(), "step {}: {}", i + 1, check.line());
                }
            }
            assert_eq!(
                harness.query_all_by_label_contains(&words.in_this_run).count(),
                step.claims.len(),
                "step {}: one checked line per claim",
                i + 1
            );
            check(harness, &format!("step {}, answered", i + 1));
        }
        // The exercises: each answer hidden until asked for, its claims held on the student's run.
        for (k, exercise) in step.exercises.iter().enumerate() {
            harness.get_by_label(&exercise.task);
            assert_eq!(harness.query_all_by_label(&exercise.answer).count(), 0, "exercise {}'s answer hidden", k + 1);
            harness.get_by_label(&numbered(&words.run_exercise, k + 1)).click();
            harness.run_steps(2);
            let config = exercise.config().expect("read");
            assert_eq!(&harness.state().settings.config, config, "exercise {} sets its experiment up", k + 1);
            let started = Instant::now();
            while harness.state().is_busy() || !exercise.is_answered_by(harness.state().results.connect()) {
                assert!(started.elapsed() < Duration::from_secs(300), "exercise {} did not finish", k + 1);
                std::thread::sleep(Duration::from_millis(20));
                harness.step();
            }
            harness.get_by_label(&numbered(&words.show_answer, k + 1)).click();
            harness.run_steps(2);
            harness.get_by_label(&exercise.answer);
            let checks = exercise.check_claims(harness.state().results.connect().expect("its run"));
            for check in &checks {
                assert!(check.holds_everywhere(), "exercise {}: {}", k + 1, check.line());
                harness.get_by_label_contains(check.line());
            }
            check(harness, &format!("step {}, exercise {} answered", i + 1, k + 1));
        }
        if i + 1 < steps.len() {
            harness.get_by_label(&words.next).click();
            harness.run_steps(2);
        }
    }
    timings
}

#[test]
fn classroom_mode_hides_the_advanced_controls_until_switched_off() {
    let mut harness = harness();
    harness.run_steps(2);
    harness.state_mut().settings.classroom = true;
    harness.run_steps(2);
    for hidden in ["Files", "debug overlay"] {
        assert_eq!(harness.query_all_by_label(hidden).count(), 0, "`{hidden}` shown in classroom mode");
    }
    assert_eq!(harness.query_all_by_label_contains("Weight Scope Alignment").count(), 0);
    assert_eq!(harness.query_all_by_label_contains("momentum").count(), 0);
    harness.get_by_label("classroom mode").click();
    harness.run_steps(2);
    assert!(!harness.state().settings.classroom);
    harness.get_by_label("Files");
    harness.get_by_label("Weight Scope Alignment");
}

/// A locked classroom mode (`?classroom=locked`, `--classroom-locked`) has no switch to leave
/// it; "Reset to defaults" brings back the default experiment and keeps classroom mode.
#[test]
fn a_locked_classroom_stays_and_reset_restores_the_default_experiment() {
    let mut harness = harness();
    harness.run_steps(2);
    let default = harness.state().settings.config.clone();
    assert_eq!(harness.query_all_by_role_and_label(Role::CheckBox, "classroom mode").count(), 1);
    harness.state_mut().settings.classroom = true;
    harness.state_mut().settings.classroom_locked = true;
    harness.state_mut().settings.config.train.epochs = 7;
    harness.state_mut().settings.config.seeds = 2;
    harness.run_steps(2);
    harness.get_by_label("classroom mode");
    assert_eq!(
        harness.query_all_by_role_and_label(Role::CheckBox, "classroom mode").count(),
        0,
        "a locked classroom mode has no switch"
    );
    harness.get_by_label("Reset to defaults").click();
    harness.run_steps(2);
    let settings = &harness.state().settings;
    assert_eq!(settings.config, default);
    assert!(settings.classroom && settings.classroom_locked);
    // The lock belongs to this opening of the app: it is never saved.
    let saved = serde_json::to_string(settings).expect("settings serialise");
    assert!(!saved.contains("classroom_locked"), "{saved}");
}

/// The tour from the keyboard alone: → and ← move between steps, R runs the open step, ? lists
/// the keys, Esc closes that list and then leaves.
#[test]
fn the_tour_is_driven_by_the_keyboard() {
    let mut harness = in_the_tour();
    let press = |harness: &mut Harness<'static, WsaLabApp>, key: egui::Key| {
        harness.key_press(key);
        harness.run_steps(2);
    };
    press(&mut harness, egui::Key::ArrowRight);
    assert_eq!(harness.state().tour.step(), Some(1));
    press(&mut harness, egui::Key::ArrowRight);
    assert_eq!(harness.state().tour.step(), Some(2));
    press(&mut harness, egui::Key::ArrowLeft);
    assert_eq!(harness.state().tour.step(), Some(1));
    press(&mut harness, egui::Key::Questionmark);
    let words = harness.state().tour.tour().words.panel.clone();
    for (key, what) in wsa_lab_app::tour::keys(&words) {
        assert!(harness.query_all_by_label(key).count() >= 1, "the key {key} is not listed");
        assert!(harness.query_all_by_label(what).count() >= 1, "`{what}` is not listed");
    }
    press(&mut harness, egui::Key::R);
    assert!(harness.state().is_busy(), "R starts the step's run");
    wait_for_job(&mut harness);
    assert!(harness.state().tour.answered(), "the step's run answers it");
    // Esc closes the list of keys first, then leaves the tour.
    press(&mut harness, egui::Key::Escape);
    assert_eq!(harness.query_all_by_label("show or hide this list").count(), 0, "Esc closes the list of keys");
    assert_eq!(harness.state().tour.step(), Some(1));
    press(&mut harness, egui::Key::Escape);
    assert_eq!(harness.state().tour.step(), None, "Esc leaves the tour");
}

/// In classroom mode a projector scale sizes everything drawn: the slider sets egui's zoom.
#[test]
fn classroom_mode_has_a_projector_scale() {
    let mut harness = harness();
    harness.run_steps(2);
    assert_eq!(harness.query_all_by_role_and_label(Role::Slider, "size").count(), 0, "only in classroom mode");
    harness.state_mut().settings.classroom = true;
    harness.run_steps(2);
    for _ in 0..4 {
        harness.get_by_role_and_label(Role::Slider, "size").focus();
        harness.run_steps(1);
        harness.key_press(egui::Key::ArrowRight);
        harness.run_steps(2);
    }
    let zoom = harness.ctx.zoom_factor();
    assert!((zoom - 1.2).abs() < 1e-3, "four steps of 0.05 from 1: zoom {zoom}");
}

/// On a phone held upright (390 x 844) the setup and the views take turns in one column: the
/// views first, the setup one button away, and back.
#[test]
fn a_narrow_screen_shows_the_setup_and_the_views_in_turn() {
    let mut harness = Harness::builder().with_size([390.0, 844.0]).build_eframe(|cc| WsaLabApp::new(cc));
    harness.run_steps(2);
    assert_eq!(harness.query_all_by_label("Presets:").count(), 0, "the setup is not beside the views");
    harness.get_by_label("Interpolation path");
    harness.get_by_label("Show setup").click();
    harness.run_steps(2);
    harness.get_by_label("Presets:");
    assert_eq!(harness.query_all_by_label("Interpolation path").count(), 0);
    harness.get_by_label("Show results").click();
    harness.run_steps(2);
    harness.get_by_label("Interpolation path");
}

/// A student writes a prediction before the run; it is shown beside the answer, and can no
/// longer be changed once the answer is on screen.
#[test]
fn a_prediction_is_written_before_the_run_and_shown_beside_the_answer() {
    let mut harness = in_the_tour();
    harness.get_by_label("Your prediction:").click();
    harness.run_steps(1);
    harness.get_by_label("Your prediction:").type_text("in the middle, about 0.3");
    harness.run_steps(2);
    harness.get_by_label("Run this step").click();
    harness.step();
    wait_for_job(&mut harness);
    harness.run_steps(3);
    assert!(harness.state().tour.answered());
    harness.get_by_label("You predicted:");
    assert!(harness.query_all_by_label("in the middle, about 0.3").count() >= 1, "the prediction beside the answer");
}

/// Each step lists the glossary's terms its texts use; a click opens the glossary at the term,
/// with what it means.
#[test]
fn a_steps_terms_open_the_glossary() {
    let mut harness = in_the_tour();
    let tour = harness.state().tour.tour().clone();
    let step = &tour.steps[0];
    let terms = tour.terms_of(step);
    assert!(terms.iter().any(|t| t.term == "loss barrier"), "step 1 defines the loss barrier");
    let term = terms[0].clone();
    harness.get_by_role_and_label(Role::Button, &term.term).click();
    harness.run_steps(3);
    harness.get_by_label(&term.meaning);
}

/// A file dropped on the window, as eframe hands it over natively: its path.
#[derive(Debug)]
struct DroppedOnDisk(std::path::PathBuf);

impl egui::DroppedFile for DroppedOnDisk {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

/// Steps frames until the files handed over are read (in the background).
fn wait_for_reading(harness: &mut Harness<'_, WsaLabApp>) {
    let started = Instant::now();
    // A click's release, or a file's arrival, is taken in by the frames after it.
    harness.run_steps(3);
    while harness.state().given.is_reading() {
        assert!(started.elapsed() < Duration::from_secs(60), "the files were not read in a minute");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.run_steps(2);
}

/// A user's own pair dropped on the window: two PyTorch MLPs and the CSV they were trained on
/// (tests/fixtures/pair, written by its make.py). Before anything runs the app shows what it
/// read (the architecture, the data's samples and classes); Compare evaluates the pair with the
/// methods that need no training, and the result is the engine's for the same config. A pickle
/// and a file of no known format are refused with their reasons, and a third model starts a new
/// pair.
#[test]
fn a_pair_and_its_data_dropped_on_the_window_are_read_and_compared() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pair");
    let mut harness = harness();
    harness.run_steps(2);
    for name in ["mlp_b.safetensors", "blobs.csv", "mlp_a.safetensors"] {
        harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedOnDisk(fixtures.join(name))));
    }
    wait_for_reading(&mut harness);
    assert_eq!(harness.state().settings.tab, wsa_lab_app::state::Tab::Given, "the drop opens Your models");
    for shown in [
        "Model A: mlp_a.safetensors · layers linear 32 → ReLU → linear 3",
        "Model B: mlp_b.safetensors · layers linear 32 → ReLU → linear 3 · input [8] · 3 classes · 387 parameters",
        "Data: blobs.csv · ",
        "8 values per sample [8] · 3 classes",
    ] {
        if harness.query_by_label_contains(shown).is_none() {
            let labels: Vec<String> = harness.query_all_by_role(Role::Label).map(|n| format!("{n:?}")).collect();
            panic!("the tab shows `{shown}`: {labels:#?}");
        }
    }
    let notices = &harness.state().notices;
    assert!(notices.is_empty(), "{notices:?}");

    harness.get_by_label("Compare the pair").click();
    harness.step();
    assert!(harness.state().is_busy(), "Compare starts a background job");
    wait_for_job(&mut harness);
    let notices = &harness.state().notices;
    assert!(notices.iter().all(|n| !n.is_error), "{notices:?}");
    let shown = harness.state().results.connect().cloned().expect("a result");
    assert_eq!(shown.difference, "a given pair: mlp_a.safetensors and mlp_b.safetensors");
    let names: Vec<&str> = shown.methods.iter().map(|m| m.method.name()).collect();
    assert_eq!(names, ["plain", "wm", "rescale", "repair", "wm+repair"]);
    assert_eq!(harness.state().models.pairs.len(), 5, "the pairs are in memory for the plane and the exports");
    for m in &shown.methods {
        assert!(m.endpoint_a.accuracy > 0.9 && m.endpoint_b.accuracy > 0.9, "{}: {:?}", m.method, m.endpoint_a);
    }
    // The engine, given the same files and config, gives the same numbers.
    let read = |name: &str| wsa_core::infer::load_user_model(&fixtures.join(name)).expect("a fixture").params;
    let pair = wsa_core::experiment::connect::GivenPair::new(
        read("mlp_a.safetensors"),
        read("mlp_b.safetensors"),
        ["mlp_a.safetensors".into(), "mlp_b.safetensors".into()],
    )
    .expect("a pair");
    let (cpu, mut silent) = (wsa_core::device::cpu(), wsa_core::cancel::Silent);
    let engine = wsa_core::wait(wsa_core::experiment::connect::evaluate_given_pair(
        &shown.config,
        &cpu,
        &pair,
        &wsa_core::data::Disk,
        &mut silent,
    ))
    .expect("the engine's run");
    assert_eq!(engine.result.methods, shown.methods);

    // The data is normalised as the models were trained: unticked, it is read again as is.
    harness.state_mut().settings.tab = wsa_lab_app::state::Tab::Given;
    harness.run_steps(2);
    harness.get_by_label("then standardise").click();
    wait_for_reading(&mut harness);
    assert!(!harness.state().settings.given_normalisation.standardise);
    assert!(
        harness.query_by_label_contains("3 classes · 8-bit pixels divided by 255, other values as they are").is_some()
    );

    // What cannot be taken is said, and a third model starts a new pair.
    let dir = std::env::temp_dir().join(format!("wsa-lab-ui-given-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (name, bytes) in [("model.pt", &b"\x80\x02}q\x00."[..]), ("notes.txt", b"hello")] {
        std::fs::write(dir.join(name), bytes).expect("write");
        harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedOnDisk(dir.join(name))));
    }
    // The same file again (fixed, say) replaces itself: the pair stays.
    harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedOnDisk(fixtures.join("mlp_b.safetensors"))));
    wait_for_reading(&mut harness);
    let refused = harness.state().given.refused.clone();
    assert!(refused.iter().any(|r| r.contains("model.pt") && r.contains("safetensors")), "{refused:?}");
    assert!(refused.iter().any(|r| r.contains("notes.txt") && r.contains("no data format")), "{refused:?}");
    let models = |harness: &Harness<'_, WsaLabApp>| -> Vec<String> {
        harness.state().given.model_files().iter().map(|f| f.name()).collect()
    };
    assert_eq!(models(&harness), ["mlp_a.safetensors", "mlp_b.safetensors"], "B dropped again replaces B");
    let third = dir.join("mlp_c.safetensors");
    std::fs::copy(fixtures.join("mlp_a.safetensors"), &third).expect("copy");
    harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedOnDisk(third)));
    wait_for_reading(&mut harness);
    assert_eq!(models(&harness), ["mlp_c.safetensors"], "a third model starts a new pair");
    // A model of another architecture: why the pair cannot be compared is said.
    let cnn = fixtures.join("../torch/batchnorm_cnn.safetensors");
    harness.input_mut().dropped_files.push(std::sync::Arc::new(DroppedOnDisk(cnn)));
    wait_for_reading(&mut harness);
    assert!(
        harness.query_by_label_contains("The pair cannot be compared as models: architectures differ").is_some(),
        "the mismatch is shown"
    );
    assert!(harness.query_by_label_contains("Their tensors could not be compared either").is_some());
    std::fs::remove_dir_all(&dir).ok();
}
