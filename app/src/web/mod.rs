//! What the app needs from the browser when it runs as the web page (`web/`): the page's side
//! (links, results for scripts, downloads, the file picker) and, in `worker`, the worker that
//! runs the jobs.

pub mod worker;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::Closure;

/// Resolves on the event loop's next task: a message to ourselves through a `MessageChannel`, so
/// that messages waiting for the worker (a Cancel) are handled before the work goes on. A
/// macrotask, like `setTimeout(0)`, but without the 4 ms clamp browsers put on nested timeouts;
/// a microtask (a resolved promise) would not let them in at all.
///
/// One channel and one handler serve every yield, and this future allocates nothing on the wasm
/// heap (a promise per yield allocated its callbacks there, held across the turn): how often the
/// work yields depends on the clock, and allocations interleaved by the clock with the work's own
/// made the worker's memory grow by a step at a random run in some pages and not in others (the
/// soak in tests/browser.rs). `platform::pause` still boxes it, a box freed before the work's
/// next allocation.
pub fn yield_to_event_loop() -> impl std::future::Future<Output = ()> {
    NextTask { turn: None }
}

/// The channel the worker posts to itself on: its sending port, and the receiving port's handler,
/// kept for the worker's life (`None` where the browser made no channel: yields then return at
/// once).
struct TurnChannel {
    /// Holds both ports for the worker's life.
    _channel: web_sys::MessageChannel,
    sender: web_sys::MessagePort,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

thread_local! {
    static TURN_CHANNEL: Option<TurnChannel> = TurnChannel::new();
    /// Messages posted to the channel, and received back: a yield that posted the n-th message
    /// resolves once n have come back.
    static TURNS_POSTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static TURNS_RECEIVED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The yields waiting for their message (a vector that keeps its capacity between turns).
    static WAITING: std::cell::RefCell<Vec<std::task::Waker>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl TurnChannel {
    fn new() -> Option<Self> {
        let channel = web_sys::MessageChannel::new().ok()?;
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|_: web_sys::MessageEvent| {
            TURNS_RECEIVED.with(|received| received.set(received.get() + 1));
            // Waking only queues the task (wasm-bindgen-futures polls it later), so the borrow
            // is not taken twice.
            WAITING.with(|waiting| waiting.borrow_mut().drain(..).for_each(std::task::Waker::wake));
        });
        channel.port1().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(Self { sender: channel.port2(), _channel: channel, _on_message: on_message })
    }
}

/// [`yield_to_event_loop`]'s future: posts its message on the first poll, ready once that
/// message has come back.
struct NextTask {
    turn: Option<u64>,
}

impl std::future::Future for NextTask {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let turn = match self.turn {
            Some(turn) => turn,
            None => {
                let posted = TURN_CHANNEL.with(|turns| {
                    turns.as_ref().is_some_and(|turns| turns.sender.post_message(&wasm_bindgen::JsValue::NULL).is_ok())
                });
                if !posted {
                    return std::task::Poll::Ready(());
                }
                let turn = TURNS_POSTED.with(|posted| {
                    posted.set(posted.get() + 1);
                    posted.get()
                });
                self.turn = Some(turn);
                turn
            }
        };
        if TURNS_RECEIVED.with(std::cell::Cell::get) >= turn {
            return std::task::Poll::Ready(());
        }
        WAITING.with(|waiting| {
            let mut waiting = waiting.borrow_mut();
            // Polled again before its turn: its task is already waiting.
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
        });
        std::task::Poll::Pending
    }
}

thread_local! {
    /// The worker's WebGPU device once created: WebGPU lets burn register its runtime only once.
    static WEBGPU: std::cell::RefCell<Option<wsa_core::device::ComputeDevice>> = const { std::cell::RefCell::new(None) };
    /// Why the page's worker runs GPU work in this module although it has no GPU backend: the
    /// worker found no WebGPU adapter, or could not load the WebGPU module (`web/worker.js`).
    static NO_WEBGPU_BECAUSE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Keeps the worker's reason for computing GPU work in the page's first module (CPU only).
pub(crate) fn note_no_webgpu(reason: String) {
    NO_WEBGPU_BECAUSE.with(|because| *because.borrow_mut() = Some(reason));
}

/// The device a job computes on in the page's worker: the WebGPU device made by an earlier job when
/// `choice` and the work call for a GPU, else a new choice (`select_in_browser`). A WebGPU
/// device that failed stays failed, and burn cannot register another: the CPU from then on.
/// In the page's first module, which has no GPU backend, the CPU with the worker's reason.
pub async fn device(
    choice: wsa_core::device::DeviceChoice,
    flops_per_step: Option<f64>,
) -> wsa_core::device::ComputeDevice {
    // Browsers do not say whether their WebGPU adapter is hardware; count it as one.
    let wants_gpu = choice.wants_gpu(true, flops_per_step);
    if !cfg!(feature = "gpu")
        && wants_gpu
        && let Some(reason) = NO_WEBGPU_BECAUSE.with(|because| because.borrow().clone())
    {
        let mut cpu = wsa_core::device::cpu();
        cpu.description = format!("{} — {reason}", cpu.description);
        return cpu;
    }
    if wants_gpu && let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        let Some(reason) = device.fault.reason() else { return device };
        let mut cpu = wsa_core::device::cpu();
        cpu.description = format!(
            "{} — WebGPU failed earlier on this page ({reason}); reload the page to try it again",
            cpu.description
        );
        return cpu;
    }
    let chosen = wsa_core::device::select_in_browser(choice, flops_per_step).await;
    if chosen.is_gpu {
        WEBGPU.with(|d| *d.borrow_mut() = Some(chosen.clone()));
    }
    chosen
}

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// What the page's link opens (`link::open`): an experiment or a tour step; `Ok(None)` without
/// one, `Err` with the notice to show.
pub fn opened_link() -> crate::AppResult<Option<crate::link::Link>> {
    crate::link::open(&window().and_then(|w| w.location().hash().ok()).unwrap_or_default())
}

thread_local! {
    static LINKED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Keeps the address bar's link equal to the experiment on screen, or the tour step while the
/// tour is open (without a new history entry), so that copying it reproduces the setup, seed
/// included, or opens the same step.
pub fn keep_link_current(config: &wsa_core::experiment::connect::ConnectConfig, tour_step: Option<usize>) {
    let hash = match tour_step {
        Some(step) => crate::link::tour_fragment(step),
        None => {
            let Some(hash) = crate::link::fragment(config) else { return };
            hash
        }
    };
    if LINKED.with(|l| *l.borrow() == hash) {
        return;
    }
    if let Some(history) = window().and_then(|w| w.history().ok()) {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&hash));
    }
    LINKED.with(|l| *l.borrow_mut() = hash);
}

/// Puts the finished run's barriers, and where its time went, into the page for scripts and
/// tests: the hidden `<pre id="wsa-lab-result">` gets a JSON summary, and the body's
/// `data-wsa-lab` becomes "done".
pub fn publish_result(result: &wsa_core::experiment::connect::ConnectResult, timing: Option<&crate::app::RunTiming>) {
    let summary = serde_json::json!({
        "timing": timing,
        "device": result.device,
        "dataset": result.dataset,
        "difference": result.difference,
        "config": result.config,
        "methods": result.methods.iter().map(|v| serde_json::json!({
            "name": v.method,
            "loss_barrier": v.barriers.loss,
            "accuracy_barrier": v.barriers.accuracy,
            "accuracy_a": v.endpoint_a.accuracy,
            "accuracy_b": v.endpoint_b.accuracy,
        })).collect::<Vec<_>>(),
    });
    publish("wsa-lab-result", "data-wsa-lab", &summary, "done");
}

/// Puts a finished loss plane into the page for scripts and tests: the hidden
/// `<pre id="wsa-lab-plane">` gets its grid, loss range, models and time, and the body's
/// `data-wsa-lab-plane` becomes "done".
pub fn publish_plane(plane: &wsa_core::experiment::plane::Plane, timing: &crate::app::RunTiming) {
    let (best, worst) = plane.loss_range();
    let summary = serde_json::json!({
        "timing": timing,
        "grid": [plane.xs.len(), plane.ys.len()],
        "loss_min": best,
        "loss_max": worst,
        "models": plane.models,
    });
    publish("wsa-lab-plane", "data-wsa-lab-plane", &summary, "done");
}

/// Writes `summary` into the hidden `<pre id="{id}">` and `state` into the body's `attribute`.
fn publish(id: &str, attribute: &str, summary: &serde_json::Value, state: &str) {
    let Some(document) = window().and_then(|w| w.document()) else { return };
    let element = document.get_element_by_id(id).or_else(|| {
        let pre = document.create_element("pre").ok()?;
        pre.set_id(id);
        let _ = pre.set_attribute("hidden", "");
        document.body()?.append_child(&pre).ok()?;
        Some(pre)
    });
    if let Some(element) = element {
        element.set_text_content(Some(&summary.to_string()));
    }
    if let Some(body) = document.body() {
        let _ = body.set_attribute(attribute, state);
    }
}

/// Puts a failed job's message into the page for scripts and tests (`{"error": ...}` in
/// `<pre id="wsa-lab-result">`), and sets the body's `data-wsa-lab` to "failed".
pub fn publish_failure(message: &str) {
    publish("wsa-lab-result", "data-wsa-lab", &serde_json::json!({ "error": message }), "failed");
}

/// Publishes the centre of a named control, in CSS pixels of the canvas, as the body attribute
/// `data-wsa-lab-target-<name>="x,y"`: the browser test clicks there (a canvas has no DOM
/// elements). Written only when it moved.
pub fn publish_target(name: &str, centre: egui::Pos2) {
    let Some(body) = window().and_then(|w| w.document()).and_then(|d| d.body()) else { return };
    let attribute = format!("data-wsa-lab-target-{name}");
    let value = format!("{:.0},{:.0}", centre.x, centre.y);
    if body.get_attribute(&attribute).as_deref() != Some(value.as_str()) {
        let _ = body.set_attribute(&attribute, &value);
    }
}

/// Publishes the tour's state for the browser test: the body attribute `data-wsa-lab-tour` is
/// "N:answered" or "N:pending" for step N (from 1), "off" outside the tour; the seconds the
/// step's run took to its answer go into `data-wsa-lab-tour-seconds`, and how many of its claims
/// held on every seed ("held/claims") into `data-wsa-lab-tour-claims`. Written only when changed.
pub fn publish_tour(step: Option<usize>, answered: bool, seconds: Option<f64>, claims: Option<(usize, usize)>) {
    let Some(body) = window().and_then(|w| w.document()).and_then(|d| d.body()) else { return };
    let state =
        step.map_or("off".to_string(), |s| format!("{}:{}", s + 1, if answered { "answered" } else { "pending" }));
    let seconds = seconds.map_or(String::new(), |s| format!("{s:.2}"));
    let claims = claims.map_or(String::new(), |(held, of)| format!("{held}/{of}"));
    for (attribute, value) in
        [("data-wsa-lab-tour", state), ("data-wsa-lab-tour-seconds", seconds), ("data-wsa-lab-tour-claims", claims)]
    {
        if body.get_attribute(attribute).as_deref() != Some(value.as_str()) {
            let _ = body.set_attribute(attribute, &value);
        }
    }
}

/// Mirrors the tour's words (`TourGuide::words`) into the page's element
/// `#wsa-lab-tour-text`, an ARIA live region beside the canvas: the canvas is pixels, so this is
/// what a screen reader reads, and what a browser can translate. Its `lang` is the tour's
/// `language`, so that a screen reader speaks it in that language, and its label (`label`) in
/// that language too. Written only when changed.
pub fn mirror_tour(words: &str, language: &str, label: &str) {
    let Some(element) = window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("wsa-lab-tour-text"))
    else {
        return;
    };
    if element.text_content().as_deref() != Some(words) {
        element.set_text_content(Some(words));
    }
    for (name, value) in [("lang", language), ("aria-label", label)] {
        if element.get_attribute(name).as_deref() != Some(value) {
            let _ = element.set_attribute(name, value);
        }
    }
}

/// The tour language the page's address asks for (`?lang=de`), if any.
fn language_requested() -> Option<String> {
    let search = window().and_then(|w| w.location().search().ok())?;
    search.trim_start_matches('?').split('&').find_map(|pair| pair.strip_prefix("lang=")).map(str::to_string)
}

/// The tour in the language the page's address asks for (`?lang=de`: `tour/tour.de.ron` beside
/// index.html; for `?lang=de-AT` without a file of its own, `de`'s), fetched and checked as a
/// native `--tour-file` is: `None` without `?lang=` or for English (compiled in),
/// `Some(Err(notice))` when it cannot be had (the shipped tour shows).
pub async fn requested_tour() -> Option<Result<crate::tour::Tour, String>> {
    let language = language_requested()?;
    let primary = language.split('-').next().unwrap_or_default().to_string();
    if primary == "en" {
        return None;
    }
    let fetched = fetch_tour(&language).await;
    if fetched.is_err()
        && primary != language
        && let Ok(tour) = fetch_tour(&primary).await
    {
        return Some(Ok(tour));
    }
    Some(fetched)
}

async fn fetch_tour(language: &str) -> Result<crate::tour::Tour, String> {
    use wasm_bindgen_futures::JsFuture;
    let instead = "the English tour is shown instead";
    if !crate::tour::is_language_tag(language) {
        return Err(format!("?lang={language} is not a language tag (write one like ?lang=de): {instead}."));
    }
    let url = format!("tour/tour.{language}.ron");
    let failed = |why: String| format!("The tour in `{language}` could not be loaded from {url} ({why}): {instead}.");
    let window = window().ok_or_else(|| failed("no window".into()))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(&url))
        .await
        .map_err(|e| failed(format!("{e:?}")))?
        .dyn_into()
        .map_err(|_| failed("no response".into()))?;
    if response.status() == 404 {
        return Err(failed("there is no such translation: tour/ holds one file per language".into()));
    }
    if !response.ok() {
        return Err(failed(format!("HTTP {} {}", response.status(), response.status_text())));
    }
    let text = response.text().map_err(|e| failed(format!("{e:?}")))?;
    let text = JsFuture::from(text).await.map_err(|e| failed(format!("{e:?}")))?;
    let text = text.as_string().ok_or_else(|| failed("not text".into()))?;
    crate::tour::Tour::parse(&text).map_err(|e| failed(e.to_string()))
}

/// Publishes whether a job runs, as the body attribute `data-wsa-lab-busy` ("yes"/"no"): the
/// browser test watches a Cancel take effect. Written only when it changed.
pub fn publish_busy(busy: bool) {
    let Some(body) = window().and_then(|w| w.document()).and_then(|d| d.body()) else { return };
    let value = if busy { "yes" } else { "no" };
    if body.get_attribute("data-wsa-lab-busy").as_deref() != Some(value) {
        let _ = body.set_attribute("data-wsa-lab-busy", value);
    }
}

/// Whether the page's address asks for classroom mode (`?classroom`).
pub fn classroom_requested() -> bool {
    window().and_then(|w| w.location().search().ok()).is_some_and(|s| s.contains("classroom"))
}

/// Whether the page's address locks classroom mode on (`?classroom=locked`), so that students
/// cannot leave it.
pub fn classroom_locked() -> bool {
    window().and_then(|w| w.location().search().ok()).is_some_and(|s| s.contains("classroom=locked"))
}

/// Whether the page's address asks to start the experiment at once (`?autorun`).
pub fn autorun_requested() -> bool {
    window().and_then(|w| w.location().search().ok()).is_some_and(|s| s.contains("autorun"))
}

/// The device the page's address asks for (`?device=auto|gpu|cpu`), if any.
pub fn device_requested() -> Option<wsa_core::device::DeviceChoice> {
    let search = window().and_then(|w| w.location().search().ok())?;
    let value = search.trim_start_matches('?').split('&').find_map(|pair| pair.strip_prefix("device="))?;
    value.parse().ok()
}

/// Hands `bytes` to the browser as a download called `name` (a page cannot write files).
pub fn download(name: &str, bytes: &[u8]) -> crate::AppResult<()> {
    let failed = |what: &str| crate::AppError::browser(&format!("start the download of {name}"), format!("no {what}"));
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(|_| failed("blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| failed("object URL"))?;
    let clicked = click_download_link(&url, name).ok_or_else(|| failed("link"));
    revoke_later(url);
    clicked
}

/// Frees an object URL once the browser has surely read it: the download reads the blob after
/// the click returns, and revoking at once lost some of several downloads in a row.
fn revoke_later(url: String) {
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    if let Some(w) = window() {
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
    }
}

/// Starts the download of `href` as `name` through a link the user could have clicked.
fn click_download_link(href: &str, name: &str) -> Option<()> {
    let anchor: web_sys::HtmlAnchorElement = window()?.document()?.create_element("a").ok()?.dyn_into().ok()?;
    anchor.set_href(href);
    anchor.set_download(name);
    anchor.click();
    Some(())
}

/// Downloads `files` as one ZIP archive named `name`. Figures are drawn into PNGs by the
/// browser first (with its fonts: plotters cannot draw text into a bitmap in wasm), so the
/// download starts a moment later; what fails then is logged to the console, since the export
/// that asked has returned.
pub fn download_archive(name: &str, files: wsa_figures::files::Files) {
    let name = name.to_string();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = archive(files).await.and_then(|zip| download(&name, &zip)) {
            web_sys::console::error_1(&format!("WSA Lab: {name} was not saved: {e}").into());
        }
    });
}

/// Why an archive could not be built: the browser refused a step of it (`reason`).
fn archive_failed(reason: impl std::fmt::Display) -> crate::AppError {
    crate::AppError::browser("build the archive", reason)
}

/// The files as a ZIP archive (deflated), figures as PNGs.
async fn archive(files: wsa_figures::files::Files) -> crate::AppResult<Vec<u8>> {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        let bytes = match content {
            wsa_figures::files::Content::Bytes(bytes) => bytes,
            wsa_figures::files::Content::Image(image) => {
                let svg = wsa_figures::render::svg(&image)?;
                svg_to_png(&svg, image.size()).await?
            }
        };
        zip.start_file(name.as_str(), options).map_err(|e| archive_failed(format!("archiving {name}: {e}")))?;
        zip.write_all(&bytes).map_err(|e| archive_failed(format!("archiving {name}: {e}")))?;
    }
    Ok(zip.finish().map_err(|e| archive_failed(format!("finishing the archive: {e}")))?.into_inner())
}

/// An SVG document drawn by the browser on a canvas of `size` pixels, as PNG bytes.
async fn svg_to_png(svg: &str, size: (u32, u32)) -> crate::AppResult<Vec<u8>> {
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/svg+xml");
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(svg));
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| archive_failed("no SVG blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| archive_failed("no object URL"))?;
    let image =
        web_sys::HtmlImageElement::new_with_width_and_height(size.0, size.1).map_err(|_| archive_failed("no image"))?;
    image.set_src(&url);
    let drawn = draw_as_png(&image, size).await;
    let _ = web_sys::Url::revoke_object_url(&url);
    // "data:image/png;base64,<data>"; atob gives one char per byte.
    let data_url = drawn?;
    let base64 = data_url.split_once(',').map(|(_, data)| data).ok_or_else(|| archive_failed("no PNG data"))?;
    let binary = window()
        .ok_or_else(|| archive_failed("no window"))?
        .atob(base64)
        .map_err(|_| archive_failed("undecodable PNG data"))?;
    Ok(binary.chars().map(|c| c as u8).collect())
}

/// The decoded `image` drawn on a canvas of `size`, as a PNG data URL.
async fn draw_as_png(image: &web_sys::HtmlImageElement, size: (u32, u32)) -> crate::AppResult<String> {
    wasm_bindgen_futures::JsFuture::from(image.decode())
        .await
        .map_err(|e| archive_failed(format!("decoding the SVG: {e:?}")))?;
    let canvas: web_sys::HtmlCanvasElement = window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("canvas").ok())
        .and_then(|e| e.dyn_into().ok())
        .ok_or_else(|| archive_failed("no canvas"))?;
    canvas.set_width(size.0);
    canvas.set_height(size.1);
    let context: web_sys::CanvasRenderingContext2d = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|c| c.dyn_into().ok())
        .ok_or_else(|| archive_failed("no 2-D context"))?;
    context
        .draw_image_with_html_image_element(image, 0.0, 0.0)
        .map_err(|e| archive_failed(format!("drawing: {e:?}")))?;
    canvas.to_data_url_with_type("image/png").map_err(|e| archive_failed(format!("encoding the PNG: {e:?}")))
}

/// Asks the user for a file (`accept`: e.g. ".safetensors") through the browser's file picker;
/// its name and bytes, or `None` if the browser gave none. A cancelled picker never resolves,
/// which leaves nothing behind but this idle task.
pub async fn pick_file(accept: &str) -> Option<(String, Vec<u8>)> {
    let input = file_input(accept)?;
    if !chosen(&input).await {
        return None;
    }
    let file = input.files()?.get(0)?;
    Some((file.name(), file_bytes(&file).await.ok()?))
}

/// Asks the user for files (`accept`: e.g. ".safetensors,.csv") through the browser's file
/// picker, several at once; the files chosen, unread, in the order the browser lists them (their
/// sizes can be checked before [`file_bytes`] reads them). A cancelled picker never resolves,
/// which leaves nothing behind but this idle task.
pub async fn pick_files(accept: &str) -> Vec<web_sys::File> {
    let Some(input) = file_input(accept) else { return Vec::new() };
    input.set_multiple(true);
    if !chosen(&input).await {
        return Vec::new();
    }
    let Some(files) = input.files() else { return Vec::new() };
    (0..files.length()).filter_map(|index| files.get(index)).collect()
}

/// The bytes of a file the user chose, or what the browser said when it would not read them.
pub async fn file_bytes(file: &web_sys::File) -> crate::AppResult<Vec<u8>> {
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| crate::AppError::browser(&format!("read {}", file.name()), format!("{e:?}")))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// A file input of the page's, not in its document, taking `accept`.
fn file_input(accept: &str) -> Option<web_sys::HtmlInputElement> {
    let document = window()?.document()?;
    let input: web_sys::HtmlInputElement = document.create_element("input").ok()?.dyn_into().ok()?;
    input.set_type("file");
    input.set_accept(accept);
    Some(input)
}

/// Opens `input`'s picker; true once the user chose.
async fn chosen(input: &web_sys::HtmlInputElement) -> bool {
    let chosen = js_sys::Promise::new(&mut |resolve, _reject| {
        let on_change = Closure::once_into_js(move |_: web_sys::Event| {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        });
        input.set_onchange(Some(on_change.unchecked_ref()));
    });
    input.click();
    wasm_bindgen_futures::JsFuture::from(chosen).await.is_ok()
}
