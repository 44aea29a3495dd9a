// The page's worker: WSA Lab's engine on a thread of its own (see app/src/web/worker.rs). The
// page's first message hands over the module it has already compiled, so nothing is downloaded
// or compiled twice; every message after it is a job or a Cancel for the module's
// worker_receive, taken in the order posted. A failure goes back to the page as {failed}.
import init, { worker_receive } from './pkg/wsa_lab_web.js';

const report = (e) => self.postMessage({ failed: String(e?.stack ?? e) });
let ready;
self.onmessage = (event) => {
  ready = (ready ?? init({ module_or_path: event.data.module }))
    .then(() => worker_receive(event.data))
    .catch(report);
};
