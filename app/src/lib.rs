//! # wsa-lab-app
//!
//! The WSA Lab user interface (egui/eframe): set up an experiment, train A and B plain and with
//! WSA in the background, and explore weight-scope histograms, interpolation paths, barriers and
//! decision regions. This crate holds the UI; `src/main.rs` (and `wsa-lab app`) only wrap it.

mod app;
pub mod export;
mod job;
pub mod state;
mod views;

pub use app::{Notice, WsaLabApp};

/// Window options; the renderer comes from `WSA_LAB_RENDERER` (`wgpu`, the default, or `glow`).
pub fn native_options() -> eframe::NativeOptions {
    let renderer = match std::env::var("WSA_LAB_RENDERER").as_deref() {
        Ok("glow") => eframe::Renderer::Glow,
        _ => eframe::Renderer::Wgpu,
    };
    eframe::NativeOptions {
        renderer,
        viewport: egui::ViewportBuilder::default().with_inner_size([1280.0, 820.0]).with_title("WSA Lab"),
        ..Default::default()
    }
}

/// What the native binary accepts.
#[derive(Clone, Copy, Debug, Default)]
pub struct LaunchOptions {
    /// Start the configured experiment at once.
    pub autorun: bool,
    /// Print frame-time statistics to stderr every two seconds.
    pub frame_log: bool,
}

impl LaunchOptions {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut options = Self::default();
        for arg in args {
            match arg.as_str() {
                "--autorun" => options.autorun = true,
                "--frame-log" => options.frame_log = true,
                other => return Err(format!("unknown argument `{other}` (known: --autorun, --frame-log)")),
            }
        }
        Ok(options)
    }
}

/// Opens the app in a native window and returns when it closes.
pub fn run_native(options: LaunchOptions) -> eframe::Result {
    eframe::run_native(
        "WSA Lab",
        native_options(),
        Box::new(move |cc| {
            let mut app = WsaLabApp::new(cc);
            app.frame_log = options.frame_log;
            if options.autorun {
                app.start_run(&cc.egui_ctx);
            }
            Ok(Box::new(app))
        }),
    )
}
