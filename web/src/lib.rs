//! The web page's entry point: starts the WSA Lab app on the page's canvas. Built with
//! `scripts/build-web.sh` (cargo for wasm32, then wasm-bindgen) and loaded by `index.html`.
//!
//! The page runs its jobs in a Web Worker (`web/worker.js`, `wsa_lab_app::web::worker`), so that
//! training never waits for a frame: this same module instantiated a second time, or, for GPU
//! work, this crate built with the `gpu` feature (the engine's WebGPU backend), a module the
//! worker fetches only then. Without that feature the module computes on the CPU only.
//!
//! Drawing goes through eframe's glow renderer (WebGL2): it draws in real and in headless
//! browsers alike, where eframe's WebGPU renderer gave blank headless screenshots. Training and
//! merging choose their own device: WebGPU when the browser offers an adapter, else the CPU.

#[cfg(target_arch = "wasm32")]
mod page {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::prelude::*;

    /// The app with the experiment of the page's link (`#v1=...`) or at the tour step it names
    /// (`#tour=N`), in classroom mode with `?classroom`, on the device of `?device=...`,
    /// started at once with `?autorun`, with the tour in the language of `?lang=` (`tour`, as
    /// fetched). A link that does not read opens the defaults (a tour step that does not exist,
    /// the tour's first step; a translation that cannot be had, the English tour), with a notice
    /// saying why.
    fn open_app(
        cc: &eframe::CreationContext<'_>,
        tour: Option<Result<wsa_lab_app::tour::Tour, String>>,
    ) -> wsa_lab_app::WsaLabApp {
        wsa_lab_app::web::worker::prepare();
        let mut app = wsa_lab_app::WsaLabApp::new(cc);
        match tour {
            Some(Ok(tour)) => app.use_tour(tour),
            Some(Err(notice)) => app.notify(notice, true),
            None => {}
        }
        match wsa_lab_app::web::opened_link() {
            Ok(Some(wsa_lab_app::link::Link::Experiment(config))) => app.open_config(*config),
            Ok(Some(wsa_lab_app::link::Link::Tour(step))) => app.open_tour_link(&step),
            Ok(None) => {}
            Err(notice) => {
                app.open_config(Default::default());
                app.notify(notice.to_string(), true);
            }
        }
        if wsa_lab_app::web::classroom_requested() {
            app.settings.classroom = true;
            app.settings.classroom_locked = wsa_lab_app::web::classroom_locked();
        }
        if let Some(device) = wsa_lab_app::web::device_requested() {
            app.settings.device = device;
        }
        if wsa_lab_app::web::autorun_requested() {
            app.start_run(&cc.egui_ctx);
        }
        app
    }

    /// Called by `web/worker.js` with each message the page posts to its worker.
    #[wasm_bindgen]
    pub fn worker_receive(message: JsValue) {
        wsa_lab_app::web::worker::receive(message);
    }

    /// Starts the app on the page. In the page's worker (no window), which instantiates one of
    /// the page's modules, there is nothing to start: it waits for jobs (`worker_receive`).
    #[wasm_bindgen(start)]
    pub fn start() {
        if web_sys::window().is_none() {
            return;
        }
        wasm_bindgen_futures::spawn_local(async {
            let canvas = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id("wsa-lab"))
                .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok());
            let Some(canvas) = canvas else {
                web_sys::console::error_1(&"index.html has no <canvas id=\"wsa-lab\">".into());
                return;
            };
            // A translated tour (?lang=) is fetched before the app opens, so that it opens in it.
            let tour = wsa_lab_app::web::requested_tour().await;
            let options = eframe::WebOptions { renderer: eframe::Renderer::Glow, ..Default::default() };
            let started = eframe::WebRunner::new()
                .start(canvas, options, Box::new(move |cc| Ok(Box::new(open_app(cc, tour)))))
                .await;
            if let Err(e) = started {
                web_sys::console::error_2(&"WSA Lab could not start:".into(), &e);
            }
        });
    }
}

/// Both modules' allocator: talc instead of Rust's default for wasm32 (dlmalloc). Allocation
/// (dlmalloc and growing vectors) was 12-15% of the worker's time in a run; with talc the page's
/// runs take 7-11% less time, with the same numbers and as flat a memory over twenty runs
/// (docs/page.md, "A faster allocator"). This allocator is for single-threaded wasm: a build
/// with WebAssembly threads (`+atomics`) needs another. Natively this crate is empty; the
/// programs there declare mimalloc.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: Counted =
    Counted { talc: talc::wasm::new_wasm_dynamic_allocator(), in_use: std::sync::atomic::AtomicUsize::new(0) };

/// The bytes this instance's allocations hold now: what a leak grows. The instance's memory
/// (`WebAssembly.Memory`) also holds the allocator's free gaps and never shrinks, so a gap too
/// small for a later allocation steps it up once without anything being kept (the soak in
/// tests/browser.rs reads both).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn heap_bytes_in_use() -> f64 {
    ALLOCATOR.in_use.load(std::sync::atomic::Ordering::Relaxed) as f64
}

/// talc, counting the bytes its allocations hold (a relaxed atomic: these modules have one
/// thread, where it is a plain add).
#[cfg(target_arch = "wasm32")]
struct Counted {
    talc: talc::wasm::WasmDynamicTalc,
    in_use: std::sync::atomic::AtomicUsize,
}

/// One of the workspace's three `unsafe` uses outside tests and generated code (the others: the
/// native programs' allocator option, cli/src/allocator.rs, and gemm's call in core/src/conv.rs):
/// an allocator is an `unsafe` trait, and this one only passes each call on to talc's.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's promises, passed on.
        let ptr = unsafe { self.talc.alloc(layout) };
        self.count(ptr, layout.size() as isize);
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's promises, passed on.
        let ptr = unsafe { self.talc.alloc_zeroed(layout) };
        self.count(ptr, layout.size() as isize);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: the caller's promises, passed on.
        unsafe { self.talc.dealloc(ptr, layout) };
        self.count(ptr, -(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's promises, passed on.
        let moved = unsafe { self.talc.realloc(ptr, layout, new_size) };
        self.count(moved, new_size as isize - layout.size() as isize);
        moved
    }
}

#[cfg(target_arch = "wasm32")]
impl Counted {
    /// Adds `bytes` to the count unless the allocation failed (`ptr` null).
    fn count(&self, ptr: *mut u8, bytes: isize) {
        if !ptr.is_null() {
            self.in_use.fetch_add(bytes as usize, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
