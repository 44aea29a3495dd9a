// The page's worker: WSA Lab's engine on a thread of its own (see app/src/web/worker.rs), in one
// of two modules. The page's own module computes on the CPU only, which keeps the page's first
// download small; it comes compiled with the page's first message, so nothing is downloaded or
// compiled twice. The WebGPU module (the same app with the engine's GPU backend, several MB more)
// is fetched and started only when a job wants a GPU and the browser offers a WebGPU adapter.
// Each module is a wasm instance of its own. Every message after the first is a job or a Cancel
// for a module's worker_receive, taken in the order posted: a run goes to the module its
// `wants_gpu` asks for, a Cancel to the module running its job. A failure goes back to the page
// as {failed}.
import initCpu, { worker_receive as cpuReceive } from './pkg/wsa_lab_web.js';

const report = (e) => self.postMessage({ failed: String(e?.stack ?? e) });
// The page's first message: its compiled module and its address, which each module is told.
let hello;
// Each module's worker_receive, once started (promises; a failed start stays failed).
let cpuEngine, gpuEngine;
// Which module runs (or ran) which job, for its Cancel.
const engineOfJob = new Map();
const JOBS_REMEMBERED = 64;
let queue = Promise.resolve();

const cpu = () => cpuEngine ??= initCpu({ module_or_path: hello.module }).then(() => {
  cpuReceive(hello);
  return cpuReceive;
});

// An adapter is asked for first, so a browser whose WebGPU has none does not download the module.
const gpu = () => gpuEngine ??= (async () => {
  if (!self.navigator.gpu) throw new Error('this browser offers no usable WebGPU adapter (it has no WebGPU)');
  if (!(await self.navigator.gpu.requestAdapter())) {
    throw new Error('this browser offers no usable WebGPU adapter (it found none)');
  }
  const module = await import('./pkg/wsa_lab_web_gpu.js');
  await module.default();
  module.worker_receive(hello);
  return module.worker_receive;
})();

async function route(data) {
  if (data.module) {
    hello = data;
    await cpu();
    return;
  }
  let receive = engineOfJob.get(data.job);
  if (!receive) {
    receive = await cpu();
    if (data.wants_gpu) {
      try {
        receive = await gpu();
      } catch (e) {
        // The CPU module runs it, and says why where the page shows the device.
        const reason = String(e?.message ?? e);
        data.no_webgpu_because = reason.startsWith('this browser')
          ? reason : `the page's WebGPU module could not be loaded (${reason})`;
      }
    }
    engineOfJob.set(data.job, receive);
    // The worker never hears that a job ended (its results go straight to the page), so the
    // oldest entries go: a Cancel only ever follows one of the latest jobs, and a page open all
    // morning must not keep one entry per run.
    while (engineOfJob.size > JOBS_REMEMBERED) engineOfJob.delete(engineOfJob.keys().next().value);
  }
  receive(data);
}

self.onmessage = (event) => {
  queue = queue.then(() => route(event.data)).catch(report);
};
