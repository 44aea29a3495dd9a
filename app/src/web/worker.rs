//! The page's worker: the engine in a dedicated Web Worker, a second instance of the page's own
//! module (`web/worker.js` instantiates the compiled module the page hands it, so nothing is
//! downloaded or compiled twice), or of the page's WebGPU module for jobs that want a GPU where
//! the browser has an adapter (the worker script routes each job by its `wants_gpu`). Training
//! runs beside the drawing instead of between frames: with both on one thread, every training
//! step waited for a software-drawn frame.
//!
//! The page side ([`submit`], [`cancel`]) posts jobs and routes the worker's messages into the
//! running job's channel; the worker side ([`receive`]) runs them with `job::run`. Messages are
//! `job::wire` packs: one `Uint8Array` each, whose buffer is moved rather than copied.

use crate::error::{AppError, AppResult};
use crate::job::wire::{self, FromWorker, ToWorker};
use crate::job::{self, DeviceTarget, JobMessage, JobObserver, JobRequest, Wake};
use js_sys::{Array, Reflect, Uint8Array};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wsa_core::data::{DataConfig, SmallSet};
use wsa_core::device::DeviceChoice;
use wsa_core::experiment::{Event, Observer};

/// The worker's script, relative to the page (`index.html` at the repository root).
const SCRIPT: &str = "web/worker.js";

fn key(name: &str) -> JsValue {
    JsValue::from_str(name)
}

/// A pack as a JS object `{bytes}`, and the buffer to move with it.
fn to_js(packed: &[u8]) -> (JsValue, Array) {
    let object = js_sys::Object::new();
    let bytes = Uint8Array::from(packed);
    let _ = Reflect::set(&object, &key("bytes"), &bytes);
    (object.into(), Array::of1(&bytes.buffer()))
}

/// The pack a JS object `{bytes}` holds.
fn from_js(value: &JsValue) -> AppResult<Vec<u8>> {
    Reflect::get(value, &key("bytes"))
        .ok()
        .and_then(|bytes| bytes.dyn_into::<Uint8Array>().ok())
        .map(|bytes| bytes.to_vec())
        .ok_or_else(|| AppError::Worker("a message without its bytes reached the page's worker protocol".into()))
}

// ---------------------------------------------------------------------------------------------
// The page's side.

/// Where the running job's messages go.
struct Route {
    job: u64,
    sender: Sender<JobMessage>,
    wake: Wake,
}

impl Route {
    fn deliver(&self, message: JobMessage) {
        let finished = matches!(message, JobMessage::Finished(_));
        let _ = self.sender.send(message);
        (self.wake)(finished);
    }
}

/// The running job's route: filled by `submit`, emptied when the job finishes or is cancelled,
/// so that what a cancelled job still sends goes nowhere.
type CurrentRoute = Rc<RefCell<Option<Route>>>;

/// Ends the routed job, if any, with `message`.
fn finish_route(route: &CurrentRoute, message: JobMessage) {
    if let Some(current) = route.borrow_mut().take() {
        current.deliver(message);
    }
}

/// Delivers a message of job `job` if the route is that job's (a cancelled job's messages go
/// nowhere); a finished job leaves the route.
fn deliver_to_job(route: &CurrentRoute, job: u64, message: JobMessage) {
    let current = route.borrow();
    if current.as_ref().is_none_or(|routed| routed.job != job) {
        return;
    }
    if matches!(message, JobMessage::Finished(_)) {
        drop(current);
        finish_route(route, message);
    } else if let Some(routed) = current.as_ref() {
        routed.deliver(message);
    }
}

struct PageWorker {
    worker: web_sys::Worker,
    route: CurrentRoute,
    /// Set when the worker's instance died (a panic aborts it): the next job starts a new one.
    broken: Rc<Cell<bool>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::ErrorEvent)>,
}

thread_local! {
    static PAGE_WORKER: RefCell<Option<PageWorker>> = const { RefCell::new(None) };
    static NEXT_JOB: Cell<u64> = const { Cell::new(1) };
}

impl PageWorker {
    fn start() -> AppResult<Self> {
        let failed = |reason: String| AppError::Worker(reason);
        let document = web_sys::window().and_then(|w| w.document()).ok_or_else(|| failed("no document".into()))?;
        let base = document.base_uri().ok().flatten().ok_or_else(|| failed("the page has no address".into()))?;
        let url = web_sys::Url::new_with_base(SCRIPT, &base)
            .map_err(|_| failed(format!("a bad address for {SCRIPT}")))?
            .href();
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        let worker = web_sys::Worker::new_with_options(&url, &options)
            .map_err(|e| failed(format!("the browser would not start {url}: {e:?}")))?;
        let route: CurrentRoute = Rc::default();
        let broken = Rc::new(Cell::new(false));
        let messages = Rc::clone(&route);
        let failing = Rc::clone(&broken);
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let data = event.data();
            if let Some(failed) = Reflect::get(&data, &key("failed")).ok().and_then(|f| f.as_string()) {
                failing.set(true);
                let text = format!("{failed} (the next run starts a new worker)");
                return finish_route(&messages, JobMessage::Finished(Err(AppError::Worker(text))));
            }
            match from_js(&data).and_then(|bytes| wire::unpack(&bytes)) {
                Ok(FromWorker { job, message }) => deliver_to_job(&messages, job, message),
                Err(e) => finish_route(&messages, JobMessage::Finished(Err(e))),
            }
        });
        let errors = Rc::clone(&route);
        let dead = Rc::clone(&broken);
        let on_error = Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
            event.prevent_default();
            dead.set(true);
            finish_route(&errors, JobMessage::Finished(Err(AppError::Crashed(event.message()))));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // The first message: the compiled module for the worker's own instance, and the page's
        // address, against which it resolves the files it downloads.
        let hello = js_sys::Object::new();
        let _ = Reflect::set(&hello, &key("module"), &wasm_bindgen::module());
        let _ = Reflect::set(&hello, &key("base"), &JsValue::from_str(&base));
        worker.post_message(&hello).map_err(|e| failed(format!("could not reach it: {e:?}")))?;
        Ok(Self { worker, route, broken, _on_message: on_message, _on_error: on_error })
    }

    /// Posts `message`, with what `web/worker.js` routes it by beside the pack: the job's number
    /// and, for a run, whether it wants a GPU (then the worker runs it in the WebGPU module).
    fn post(&self, message: &ToWorker) -> AppResult<()> {
        let (value, transfer) = to_js(&wire::pack(message)?);
        let (job, wants_gpu) = match message {
            ToWorker::Run { job, device, flops_per_step, .. } => (*job, device.wants_gpu(true, *flops_per_step)),
            ToWorker::Cancel { job } => (*job, false),
        };
        // Job numbers stay far below 2^53, so a JS number holds them exactly.
        let _ = Reflect::set(&value, &key("job"), &JsValue::from_f64(job as f64));
        let _ = Reflect::set(&value, &key("wants_gpu"), &JsValue::from_bool(wants_gpu));
        self.worker
            .post_message_with_transfer(&value, &transfer)
            .map_err(|e| AppError::Worker(format!("could not reach it: {e:?}")))
    }
}

/// Starts the page's worker now, so that its instance is ready when the first job comes (it
/// takes about a second); a failure here is left for that job to report.
pub fn prepare() {
    PAGE_WORKER.with(|slot| {
        let _ = ready_worker(&mut slot.borrow_mut());
    });
}

/// The page's worker in `slot`, started if there is none or its instance died.
fn ready_worker(slot: &mut Option<PageWorker>) -> AppResult<&PageWorker> {
    if let Some(dead) = slot.take_if(|w| w.broken.get()) {
        dead.worker.terminate();
    }
    if slot.is_none() {
        *slot = Some(PageWorker::start()?);
    }
    slot.as_ref().ok_or_else(|| AppError::Worker("none was started".into()))
}

/// Posts `request` to the page's worker (started on first use, and again after its instance
/// died); returns the job's number and the channel its messages arrive on.
pub fn submit(
    request: JobRequest,
    device: DeviceChoice,
    flops_per_step: Option<f64>,
    wake: Wake,
) -> (u64, Receiver<JobMessage>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let job = NEXT_JOB.with(|next| next.replace(next.get() + 1));
    let posted = PAGE_WORKER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let worker = ready_worker(&mut slot)?;
        *worker.route.borrow_mut() = Some(Route { job, sender: sender.clone(), wake: Arc::clone(&wake) });
        worker.post(&ToWorker::Run { job, request, device, flops_per_step })
    });
    if let Err(e) = posted {
        let _ = sender.send(JobMessage::Finished(Err(e)));
        wake(true);
    }
    (job, receiver)
}

/// Stops job `job`: for the page at once, in the worker at its next yield.
pub fn cancel(job: u64) {
    PAGE_WORKER.with(|slot| {
        let slot = slot.borrow();
        let Some(worker) = slot.as_ref() else { return };
        let _ = worker.post(&ToWorker::Cancel { job });
        deliver_to_job(&worker.route, job, JobMessage::Finished(Err(wsa_core::WsaError::Cancelled.into())));
    });
}

// ---------------------------------------------------------------------------------------------
// The worker's side.

thread_local! {
    /// The cancel flags of the jobs running in this worker.
    static RUNNING: RefCell<HashMap<u64, Arc<AtomicBool>>> = RefCell::new(HashMap::new());
    /// The page's address, from its first message.
    static PAGE_ADDRESS: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Handles a message from the page; `web/worker.js` calls it with each one (the first carries
/// the module, which the script used, and the page's address).
pub fn receive(data: JsValue) {
    if let Some(base) = Reflect::get(&data, &key("base")).ok().and_then(|b| b.as_string()) {
        PAGE_ADDRESS.with(|address| *address.borrow_mut() = base);
        return;
    }
    if let Some(reason) = Reflect::get(&data, &key("no_webgpu_because")).ok().and_then(|r| r.as_string()) {
        crate::web::note_no_webgpu(reason);
    }
    match from_js(&data).and_then(|bytes| wire::unpack(&bytes)) {
        Ok(ToWorker::Cancel { job }) => RUNNING.with(|running| {
            if let Some(flag) = running.borrow().get(&job) {
                flag.store(true, Ordering::Relaxed);
            }
        }),
        Ok(ToWorker::Run { job, request, device, flops_per_step }) => {
            wasm_bindgen_futures::spawn_local(run_job(job, request, device, flops_per_step));
        }
        // A job whose number did not read either: the page ends its running job with this (and
        // starts a new worker for the next run), instead of waiting for an answer that never comes.
        Err(e) => {
            let failed = js_sys::Object::new();
            let _ = Reflect::set(&failed, &key("failed"), &JsValue::from_str(&format!("a job did not reach it: {e}")));
            let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
            if scope.post_message(&failed).is_err() {
                web_sys::console::error_1(&format!("WSA Lab worker: {e}").into());
            }
        }
    }
}

async fn run_job(job: u64, request: JobRequest, device: DeviceChoice, flops_per_step: Option<f64>) {
    let cancel = Arc::new(AtomicBool::new(false));
    RUNNING.with(|running| running.borrow_mut().insert(job, Arc::clone(&cancel)));
    let mut observer = JobObserver::new(Box::new(move |message| post_to_page(job, message)), cancel);
    let outcome = match download_data(request.data(), &mut observer).await {
        Ok(()) => job::run(request, DeviceTarget::Choose(device, flops_per_step), &mut observer).await,
        Err(e) => Err(e),
    };
    post_to_page(job, JobMessage::Finished(outcome));
    RUNNING.with(|running| running.borrow_mut().remove(&job));
}

/// Posts a message of job `job` to the page; `false` if it could not be posted.
fn post_to_page(job: u64, message: JobMessage) -> bool {
    let packed = wire::pack(&FromWorker { job, message })
        .or_else(|e| wire::pack(&FromWorker { job, message: JobMessage::Finished(Err(e)) }));
    let Ok(packed) = packed else { return false };
    let (value, transfer) = to_js(&packed);
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    scope.post_message_with_transfer(&value, &transfer).is_ok()
}

/// Downloads the image subset `data` reads, if it is one and this worker has not yet got it
/// (the page keeps them out of its module: most visitors never use them), reporting progress.
async fn download_data(data: &DataConfig, observer: &mut JobObserver) -> AppResult<()> {
    let Some(set) = data.dataset.small_set() else { return Ok(()) };
    if set.is_available() {
        return Ok(());
    }
    let base = PAGE_ADDRESS.with(|address| address.borrow().clone());
    let mut files = Vec::new();
    for name in SmallSet::FILES {
        let path = format!("{}/{name}", set.dir());
        let url = web_sys::Url::new_with_base(&path, &base).map(|u| u.href()).unwrap_or(path.clone());
        let what = format!("downloading {} ({name})", data.dataset.label());
        let refused = |reason: String| {
            AppError::browser(
                &format!("download {url}"),
                format!(
                    "{reason}; the page reads {} from its folder {} on first use: check the connection (or that the page is served with that folder) and run again",
                    data.dataset.label(),
                    set.dir()
                ),
            )
        };
        let bytes = download(&url, &what, observer, refused).await?;
        files.push(bytes);
    }
    let labels = files.pop().unwrap_or_default();
    let images = files.pop().unwrap_or_default();
    Ok(wsa_core::data::provide_small(set, images, labels)?)
}

/// The bytes at `url`, with a progress line (`what: x of y MB`) as they arrive; what the browser
/// refused is the error `refused` makes of its reason.
async fn download(
    url: &str,
    what: &str,
    observer: &mut JobObserver,
    refused: impl Fn(String) -> AppError,
) -> AppResult<Vec<u8>> {
    use wasm_bindgen_futures::JsFuture;
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let response: web_sys::Response = JsFuture::from(scope.fetch_with_str(url))
        .await
        .map_err(|e| refused(format!("{e:?}")))?
        .dyn_into()
        .map_err(|_| refused("no response".into()))?;
    if !response.ok() {
        return Err(refused(format!("HTTP {} {}", response.status(), response.status_text())));
    }
    let total: Option<f64> =
        response.headers().get("content-length").ok().flatten().and_then(|length| length.parse().ok());
    let body = response.body().ok_or_else(|| refused("an empty response".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader =
        body.get_reader().dyn_into().map_err(|_| refused("an unreadable response".into()))?;
    let mut bytes = Vec::new();
    let mut reported = 0.0;
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| refused(format!("{e:?}")))?;
        if Reflect::get(&chunk, &key("done")).ok().and_then(|done| done.as_bool()).unwrap_or(true) {
            break;
        }
        let value = Reflect::get(&chunk, &key("value")).map_err(|_| refused("a chunk without data".into()))?;
        bytes.extend(js_sys::Uint8Array::new(&value).to_vec());
        let megabytes = bytes.len() as f64 / 1e6;
        if megabytes - reported >= 0.25 {
            reported = megabytes;
            let of = total.map(|t| format!(" of {:.1}", t / 1e6)).unwrap_or_default();
            observer.on_event(&Event::Stage(format!("{what}: {megabytes:.1}{of} MB")));
        }
    }
    Ok(bytes)
}
