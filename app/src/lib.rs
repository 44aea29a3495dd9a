//! # wsa-lab-app
//!
//! The WSA Lab user interface (egui/eframe): set up an experiment, train A and B plain and with
//! WSA in the background, and explore weight-scope histograms, interpolation paths, barriers and
//! decision regions. This crate holds the UI; `src/main.rs` (and `wsa-lab app`) only wrap it.

mod app;
mod derived;
pub mod error;
mod job;
pub mod link;
mod platform;
pub mod results;
pub mod state;
pub mod tour;
mod views;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use app::{Notice, WsaLabApp};

/// The app's name: the native window's title, and what eframe names the folder the app's
/// settings and results are kept in.
pub const APP_NAME: &str = "WSA Lab";
pub use error::{AppError, AppResult};

/// The wgpu device eframe renders with, created so that burn can compute on it too: burn's
/// kernels are compiled for what the *adapter* supports (e.g. 64-bit integers), so the device
/// must enable the adapter's features and limits, as burn does for a device of its own.
/// Experimental features stay off: the WGSL kernels do not use them. Natively only: the page
/// draws with WebGL and computes in its worker.
#[cfg(not(target_arch = "wasm32"))]
pub fn wgpu_configuration() -> egui_wgpu::WgpuConfiguration {
    use egui_wgpu::wgpu;
    let mut config = egui_wgpu::WgpuConfiguration::default();
    if let egui_wgpu::WgpuSetup::CreateNew(create) = &mut config.wgpu_setup {
        create.device_descriptor = std::sync::Arc::new(|adapter| wgpu::DeviceDescriptor {
            label: Some("wsa-lab: egui renderer and burn"),
            required_features: adapter
                .features()
                .difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS)
                .difference(wgpu::Features::all_experimental_mask()),
            required_limits: adapter.limits(),
            memory_hints: wgpu::MemoryHints::MemoryUsage,
            ..Default::default()
        });
    }
    config
}

/// Said beside the results where they are not computed as on the desktop. In a browser the CPU
/// backend sums f32 products in another order (wasm's 128-bit SIMD lanes, not the host's), and
/// over a thousand SGD steps rounding grows into visible differences (docs/page.md has the
/// measured ones; tests/browser.rs bounds them).
pub const NUMBERS_NOTE: Option<&str> = if cfg!(target_arch = "wasm32") {
    Some(
        "Computed in this browser, where f32 sums run in another order than on the desktop: training drifts a little, so accuracies agree with the desktop app and the CLI to about 1% (a few test samples) and barriers to a few hundredths.",
    )
} else {
    None
};

/// Window options; the renderer comes from `WSA_LAB_RENDERER` (`wgpu`, the default, or `glow`).
#[cfg(not(target_arch = "wasm32"))]
pub fn native_options() -> eframe::NativeOptions {
    let renderer = match std::env::var("WSA_LAB_RENDERER").as_deref() {
        Ok("glow") => eframe::Renderer::Glow,
        _ => eframe::Renderer::Wgpu,
    };
    eframe::NativeOptions {
        renderer,
        viewport: egui::ViewportBuilder::default().with_inner_size([1280.0, 820.0]).with_title(APP_NAME),
        wgpu_options: wgpu_configuration(),
        ..Default::default()
    }
}

/// What the native binary accepts.
#[derive(Clone, Debug, Default)]
pub struct LaunchOptions {
    /// An experiment config (JSON, as `wsa-lab connect --print-config` writes) to open.
    pub config: Option<wsa_core::experiment::connect::ConnectConfig>,
    /// Start the configured experiment at once.
    pub autorun: bool,
    /// Print frame-time statistics to stderr every two seconds.
    pub frame_log: bool,
    /// Open the tour at this step (counted from 1, as in the page's `#tour=N`).
    pub tour: Option<String>,
    /// Classroom mode: only the controls a tour step needs.
    pub classroom: bool,
    /// Classroom mode that cannot be switched off (`--classroom-locked`).
    pub classroom_locked: bool,
    /// A tour file to show instead of the shipped tour (`--tour-file`: a translation, a
    /// teacher's own), read and checked.
    pub tour_file: Option<tour::Tour>,
}

impl LaunchOptions {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> AppResult<Self> {
        let mut options = Self::default();
        let mut args = args.into_iter().peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--autorun" => options.autorun = true,
                "--frame-log" => options.frame_log = true,
                "--classroom" => options.classroom = true,
                "--classroom-locked" => {
                    options.classroom = true;
                    options.classroom_locked = true;
                }
                "--tour" => {
                    // An optional step number: `--tour` alone opens the first step.
                    let step = args.next_if(|a| !a.starts_with("--")).unwrap_or_else(|| "1".into());
                    options.tour = Some(step);
                }
                "--config" => {
                    let path = args.next().ok_or_else(|| AppError::Usage("--config needs a file".into()))?;
                    options.config = Some(read_config(std::path::Path::new(&path))?);
                }
                "--tour-file" => {
                    let path = args.next().ok_or_else(|| AppError::Usage("--tour-file needs a file".into()))?;
                    let tour = tour::Tour::read_file(std::path::Path::new(&path))
                        .map_err(|e| AppError::Usage(e.to_string()))?;
                    options.tour_file = Some(tour);
                }
                other => {
                    return Err(AppError::Usage(format!(
                        "unknown argument `{other}` (known: --config FILE, --autorun, --frame-log, --tour [N], --tour-file FILE, --classroom, --classroom-locked)"
                    )));
                }
            }
        }
        Ok(options)
    }
}

/// Reads an experiment config file, with a message naming the file on failure.
pub fn read_config(path: &std::path::Path) -> AppResult<wsa_core::experiment::connect::ConnectConfig> {
    use wsa_core::experiment::Versioned;
    Ok(wsa_core::experiment::connect::ConnectConfig::read_file(path)?)
}

/// Opens the app in a native window and returns when it closes.
#[cfg(not(target_arch = "wasm32"))]
pub fn run_native(options: LaunchOptions) -> AppResult<()> {
    platform::check_display()?;
    eframe::run_native(
        APP_NAME,
        native_options(),
        Box::new(move |cc| {
            let mut app = WsaLabApp::new(cc);
            app.frame_log = options.frame_log;
            if let Some(config) = options.config {
                app.open_config(config);
            }
            if let Some(tour) = options.tour_file {
                app.use_tour(tour);
            }
            if let Some(step) = &options.tour {
                app.open_tour_link(step);
            }
            app.settings.classroom |= options.classroom;
            app.settings.classroom_locked = options.classroom_locked;
            if options.autorun {
                app.start_run(&cc.egui_ctx);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| platform::window_error(&e))
}
