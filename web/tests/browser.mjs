// Drives the web page in Debian's headless Chromium (playwright-core, no browser download):
// serves the repository root, opens index.html with an experiment link and ?autorun, waits
// for the page to publish its result (<pre id="wsa-lab-result">, body[data-wsa-lab=done]),
// prints that result as JSON on stdout and saves a screenshot.
//
//   node web/tests/browser.mjs --path cpu|webgpu|webgpu-fault --config <config.json>
//        --screenshot <file.png> [--files <dir>]
//   node web/tests/browser.mjs --path cpu --drop <file,file,...> --screenshot <file.png>
//
// The page is asked for the GPU on every path. "cpu": a plain headless browser, which offers no
// WebGPU adapter, so the page must fall back to the CPU backend. "webgpu": Chromium's
// SwiftShader WebGPU adapter. "webgpu-fault": the same, but the 12th shader module the page's
// worker creates is replaced by text that is not WGSL — a kernel failing Dawn's validation
// mid-run, as in the issue's probe — so the page must notice and redo the run on the CPU. The
// jobs run in the page's worker (web/worker.js), so the test server puts the shader hook at the
// top of that script.
// The result JSON holds "load" (when the module was ready, the module's transfer), the page's
// "timing" (each stage of the run, the frames drawn meanwhile), printed to stderr as a breakdown,
// and "served_modules" (the .wasm files the page and its worker fetched).
// With --cancel, the run is cancelled by a click once it is under way: the JSON then holds
// "cancel" (seconds from the driver's click to an idle page; milliseconds from the pointer
// reaching the page to the page being idle, by the page's clock; frames drawn during the run)
// instead.
// With --files, after the run the test clicks the Files tab's buttons where the page says they
// are (body[data-wsa-lab-target-*]), saves every download into <dir>, then loads the saved
// merged model into slot A through the file picker and waits for the re-evaluated pair; the
// result JSON then also holds "downloads" (names and sizes) and "reloaded" (the page's result
// after the load).
// With --plane <file.png>, after the run the test opens the Loss plane tab, computes the plane of
// the selected method's pair, saves a screenshot to <file.png>, clicks the middle of the plane to
// select that point's model and opens its weight scopes (a second screenshot, "-scopes.png");
// the result JSON then also holds "plane" (the page's plane summary, its timing included).
// The plane (first) and the Files tab are parts of their own: where one fails, the result JSON
// holds "plane_error" or "files_error" (the message and the page's last console lines) instead,
// and the driver goes on with the next part and exits 0 with the run's result.
// With --tour <steps> --shots <dir>, the page opens at #tour=1 (no experiment, no autorun) and
// the test goes through every step like a class: runs the step (the "Run this step" button)
// unless its answer is already on screen, waits for the answer, saves <dir>/tour-N.png and clicks
// Next; after step 2 it reloads the page, which must come back at step 2. The result JSON is then
// {"tour": [{step, seconds, claims}], "load": ...}.
// With --languages <tag,tag,...> --shots <dir>, the page opens at #tour=1 with ?lang=<tag> for each
// tag in turn, waits for the step to be mirrored into the page (#wsa-lab-tour-text), runs it (R)
// and saves <dir>/tour-1-<tag>.png; the result JSON is {"languages": [{lang, mirror_lang, text,
// aria}], ...}.
// With --soak <runs>, the page opens with the experiment (no autorun) and the test presses Run
// <runs> times in that one page, waiting for each result; after each it collects garbage (page
// and worker) and records the wasm memory of the page's and the worker's instances, the bytes their
// allocations hold (the allocator's count, heap_bytes_in_use) and the JS
// heaps; the result JSON is then {"soak": [{run, seconds, page_wasm_bytes, ...}], "load": ...}
// and the series is printed to stderr.
// With --drop <file,file,...>, the page opens without an experiment (no autorun) and the test
// drops those files on its canvas at once (a synthetic drop event carrying File objects, as a
// drag from the desktop does), waits until the page has read them and shows "Compare the pair",
// clicks it and waits for the result: the JSON is the page's result with "drop" (seconds from
// the drop to the button, and to the result, by the driver's clock).
// With --trace <file.json> (the run to a result, as above), Chromium records the CPU samples of
// the page and its worker from navigation to the result into <file.json> (Chrome's trace format,
// which DevTools' Performance panel opens); scripts/page-profile.py sums the worker's job by
// kind of work. A bundle built with WSA_WASM_NAMES=1 scripts/build-web.sh keeps the functions'
// names in the trace.
// Every mode serves the page's Content-Security-Policy (index.html's <meta> tag) as a header, as
// scripts/serve-web.py does, listens for policy violations in the page and its worker, records
// every request the page and its worker make, and at the end checks that the policy is in force
// in both (a string evaluated as code must be refused); the result JSON holds it all as
// "security" (tests/browser.rs asserts on it).
// Exit status 0 with the result, 1 with a message on stderr.
import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) =>
  a.startsWith('--') ? [...pairs, [a.slice(2), all[i + 1]]] : pairs, []));
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const timeoutMs = Number(args.timeout ?? 600) * 1000;

// Dawn reports a WGSL error only as "Invalid ShaderModule"; this logs the compiler's message and
// the offending lines, so a failure names the shader. With `breakModule` > 0 that shader module
// is replaced by text that is not WGSL.
function shaderHook(breakModule) {
  if (!globalThis.GPUDevice) return;
  const create = GPUDevice.prototype.createShaderModule;
  let created = 0;
  GPUDevice.prototype.createShaderModule = function (descriptor) {
    created += 1;
    if (created === breakModule) {
      console.warn(`test: shader module ${created} replaced by invalid WGSL`);
      descriptor = { ...descriptor, code: 'this is not WGSL;' };
    }
    const module = create.call(this, descriptor);
    module.getCompilationInfo().then((info) => {
      for (const m of info.messages.filter((m) => m.type === 'error')) {
        const lines = descriptor.code.split('\n');
        const around = lines.slice(Math.max(0, m.lineNum - 4), m.lineNum + 2).join('\n');
        console.error(`WGSL error: ${m.message} (line ${m.lineNum})\n${around}\n--- shader starts:\n${lines.slice(0, 12).join('\n')}`);
      }
    });
    return module;
  };
}

// The page's policy, from index.html's <meta> tag as scripts/serve-web.py reads it, sent as a
// header on every response: the header is what puts the worker under it.
const policy = fs.readFileSync(path.join(root, 'index.html'), 'utf8')
  .match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)"/)?.[1];
if (!policy) { console.error('index.html has no Content-Security-Policy <meta> tag'); process.exit(1); }

// Put at the top of the worker's script on every path: a policy violation in the worker is
// logged where the driver reads the worker's console (a page's listeners do not see a worker's
// violations, and the driver cannot add an init script to a worker).
function violationListener() {
  self.addEventListener('securitypolicyviolation', (e) => console.error(
    `test: CSP violation in the worker: ${e.violatedDirective} refused ${e.blockedURI || '(inline)'} (${e.sourceFile}:${e.lineNumber})`));
}

// The modules the page and its worker fetched, in order: the WebGPU one only for GPU work where
// the browser has an adapter.
const servedModules = [];
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const headers = (type) => ({ 'content-type': type, 'content-security-policy': policy });
  const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    const index = path.join(file, 'index.html');
    if (fs.existsSync(index)) { res.writeHead(200, headers('text/html')); return fs.createReadStream(index).pipe(res); }
    res.writeHead(404, { 'content-security-policy': policy }); return res.end();
  }
  if (file.endsWith('.wasm')) servedModules.push(path.relative(root, file));
  res.writeHead(200, headers(types[path.extname(file)] ?? 'application/octet-stream'));
  if (file === path.join(root, 'web/worker.js')) {
    const hook = args.path.startsWith('webgpu') ? `(${shaderHook.toString()})(${args.path === 'webgpu-fault' ? 12 : 0});\n` : '';
    return res.end(`(${violationListener.toString()})();\n${hook}${fs.readFileSync(file, 'utf8')}`);
  }
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const port = server.address().port;

const base = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const webgpu = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader'];
// The soak reads exact heap sizes (Chromium rounds performance.memory without the first flag)
// after collecting garbage itself (gc(), which the second one gives page and worker alike).
const soakFlags = ['--enable-precise-memory-info', '--js-flags=--expose-gc'];
const launch = {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [...base, ...(args.path.startsWith('webgpu') ? webgpu : []), ...(args.soak ? soakFlags : [])],
};
const contextOptions = { acceptDownloads: true, viewport: { width: 1280, height: 820 } };
// Tracing needs the browser itself, which a persistent context (a profile of its own, what every
// other mode runs in) does not hand out; `browser` is the context either way.
if (args.trace && (args.cancel || args.soak || args.tour || args.languages || args.drop)) {
  console.error('--trace records the run to a result only: leave out --cancel, --soak, --tour, --languages and --drop');
  process.exit(1);
}
const tracedBrowser = args.trace ? await chromium.launch(launch) : null;
// The persistent context's profile (~20 MB): removed when the driver's process exits, however
// it exits (a failed launch or close, a rejection nobody handled), since a profile left in the
// temporary folder by every run filled it. Playwright's own exit handler, registered before this
// one, has stopped Chromium by then.
const profile = tracedBrowser ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'wsa-lab-chromium-'));
if (profile) process.on('exit', () => fs.rmSync(profile, { recursive: true, force: true }));
const browser = tracedBrowser ? await tracedBrowser.newContext(contextOptions)
  : await chromium.launchPersistentContext(profile, { ...launch, ...contextOptions });

// What the policy refused: the page's securitypolicyviolation events (an init script, so they are
// heard from the page's first script on and after a reload), the worker's (violationListener, in
// its console) and Chromium's console messages about the policy.
const violations = [];
const violationMessage = /Content Security Policy|CSP violation/i;
await browser.exposeFunction('wsaLabTestViolation', (text) => violations.push(`page: ${text}`));
await browser.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => window.wsaLabTestViolation(
  `${e.violatedDirective} refused ${e.blockedURI || '(inline)'} (${e.sourceFile}:${e.lineNumber})`)));
// Every request the page and its worker made (downloads, data: and blob: URLs included).
const requests = [];
browser.on('request', (r) => requests.push(r.url()));

// The policy in force and what the page did under it: the violations heard, whether a string
// evaluated as code is refused in the page and in each worker (it must be: no 'unsafe-eval'),
// and every request, with those that left the page's origin. The probes run after the violations
// are taken, since their refusals are violations too; a request from each worker checks that the
// recording hears the worker's requests.
async function security(page) {
  const heard = [...violations];
  // From a task of the realm's own: code the driver evaluates may evaluate strings whatever the
  // policy says (the DevTools protocol allows it during an evaluation).
  const refuses = () => new Promise((ok) => setTimeout(() => {
    try { new Function('return 1')(); ok(false); } catch (e) { ok(e instanceof EvalError); }
  }, 0));
  const workers = page.workers();
  const enforced = { page: await page.evaluate(refuses), workers: await Promise.all(workers.map((w) => w.evaluate(refuses))) };
  const probe = '/index.html?request-probe=worker';
  await Promise.all(workers.map((w) => w.evaluate((p) => fetch(p).then((r) => r.status), probe)));
  await page.waitForTimeout(200);
  // The probes' refusals, as the listeners heard them: proof that a violation would be heard.
  const probes = violations.slice(heard.length);
  const probes_heard = { page: probes.some((v) => v.startsWith('page:')), worker: probes.some((v) => v.includes('in the worker')) };
  const origin = new URL(page.url()).origin;
  const foreign = requests.filter((u) => { const url = new URL(u); return url.protocol !== 'data:' && url.origin !== origin; });
  const paths = [...new Set(requests.filter((u) => !foreign.includes(u)).map((u) => { const url = new URL(u); return url.protocol === 'http:' ? url.pathname + url.search : url.protocol; }))];
  return { policy, violations: heard, enforced, probes_heard, requests: requests.length, paths, foreign,
    worker_probe_heard: paths.includes(probe) };
}
// Clicks the control the page published as `name` (its centre, in canvas CSS pixels).
async function click(page, name) {
  const attribute = `data-wsa-lab-target-${name}`;
  await page.waitForFunction((a) => document.body.hasAttribute(a), attribute, { timeout: 20000 });
  const [x, y] = (await page.getAttribute('body', attribute)).split(',').map(Number);
  const canvas = await page.locator('canvas').first().boundingBox();
  await page.mouse.click(canvas.x + x, canvas.y + y);
}

// The Files tab end to end: figures, results and models download as one archive each, the
// merged model of the selected pair as a file, which then loads into slot A of that pair.
async function exerciseFiles(page, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const downloads = [];
  page.on('download', (d) => downloads.push(d));
  await click(page, 'files-tab');
  for (const button of ['export-figures', 'export-results', 'save-models', 'save-merged']) {
    const before = downloads.length;
    await click(page, button);
    const deadline = Date.now() + 30000;
    while (downloads.length === before && Date.now() < deadline) await page.waitForTimeout(100);
    if (downloads.length === before) throw new Error(`${button}: no download within 30 s`);
  }
  const saved = [];
  for (const d of downloads) {
    const file = path.join(dir, d.suggestedFilename());
    await d.saveAs(file);
    saved.push({ name: d.suggestedFilename(), bytes: fs.statSync(file).size });
  }
  const before = await page.textContent('#wsa-lab-result');
  const chooser = page.waitForEvent('filechooser', { timeout: 20000 });
  await click(page, 'load-a');
  await (await chooser).setFiles(path.join(dir, saved[saved.length - 1].name));
  await page.waitForFunction((b) => document.getElementById('wsa-lab-result').textContent !== b, before,
    { timeout: 60000, polling: 200 });
  return { downloads: saved, reloaded: JSON.parse(await page.textContent('#wsa-lab-result')) };
}

// Drops `files` on the page's canvas as one drag from the desktop would (a DataTransfer of
// File objects), then compares the pair the page read: seconds from the drop to the page's
// "Compare the pair" button, and to its result.
async function dropAndCompare(page, files) {
  await page.waitForFunction(() => document.body.hasAttribute('data-wsa-lab-target-tour-start'), null, { timeout: 60000 });
  const payload = files.map((f) => ({ name: path.basename(f), data: fs.readFileSync(f).toString('base64') }));
  const started = Date.now();
  await page.evaluate((payload) => {
    const transfer = new DataTransfer();
    for (const f of payload) {
      const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], f.name));
    }
    const canvas = document.querySelector('canvas');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      canvas.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }
  }, payload);
  // Each file is read on its own: the pair can be ready before the data set is.
  const withData = payload.some((f) => !f.name.endsWith('.safetensors') && !f.name.endsWith('.json'));
  await page.waitForFunction((withData) => document.body.hasAttribute('data-wsa-lab-target-compare-given')
    && (!withData || document.body.hasAttribute('data-wsa-lab-target-given-data')),
    withData, { timeout: 60000, polling: 50 });
  const read = (Date.now() - started) / 1000;
  // The button is published once drawn: one frame more and it takes the click.
  await page.waitForTimeout(100);
  await click(page, 'compare-given');
  await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.wsaLab), null,
    { timeout: timeoutMs, polling: 50 });
  if (await page.evaluate(() => document.body.dataset.wsaLab) === 'failed') {
    throw new Error(`the comparison failed: ${await page.textContent('#wsa-lab-result')}`);
  }
  const result = (Date.now() - started) / 1000;
  console.error(`drop: ${files.length} files read in ${read.toFixed(2)} s; the pair compared ${result.toFixed(2)} s after the drop`);
  return { seconds_to_compare_button: read, seconds_to_result: result };
}

// The Loss plane tab end to end: compute, look, click a point, see its model's scopes.
async function exercisePlane(page, screenshot) {
  await click(page, 'plane-tab');
  await click(page, 'compute-plane');
  await page.waitForFunction(() => document.body.dataset.wsaLabPlane === 'done' || document.body.dataset.wsaLab === 'failed',
    null, { timeout: timeoutMs, polling: 100 });
  if (await page.evaluate(() => document.body.dataset.wsaLab) === 'failed') {
    throw new Error(`the plane failed: ${await page.textContent('#wsa-lab-result')}`);
  }
  const plane = JSON.parse(await page.textContent('#wsa-lab-plane'));
  await page.waitForTimeout(300);
  await page.screenshot({ path: screenshot });
  await click(page, 'plane-plot');
  await click(page, 'plane-point-scopes');
  await page.waitForTimeout(500);
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-scopes.png') });
  const t = plane.timing;
  console.error(`plane: ${plane.grid.join(' x ')} grid in ${t.seconds.toFixed(2)} s (job start to result)`
    + t.stages.map(([stage, at]) => `\n  ${at.toFixed(2).padStart(7)} s  ${stage}`).join(''));
  return plane;
}

// The tour's first step in each language of `tags` (?lang=): what the page mirrors for a screen
// reader, in which language, and a screenshot.
async function openInLanguages(page, tags, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const opened = [];
  for (const tag of tags) {
    await page.goto(`http://127.0.0.1:${port}/index.html?device=cpu&lang=${tag}#tour=1`);
    await page.waitForFunction(() => (document.body.dataset.wsaLabTour ?? '').startsWith('1:')
      && (document.getElementById('wsa-lab-tour-text')?.textContent ?? '') !== '', null, { timeout: 60000, polling: 50 });
    // Run the step (R), so that its claims are reported in the language too.
    await page.focus('canvas#wsa-lab');
    await page.keyboard.press('r');
    await page.waitForFunction(() => document.body.dataset.wsaLabTour === '1:answered' && document.body.dataset.wsaLabBusy === 'no'
      || document.body.dataset.wsaLab === 'failed', null, { timeout: timeoutMs, polling: 50 });
    await page.waitForTimeout(400);
    const mirror = page.locator('#wsa-lab-tour-text');
    opened.push({ lang: tag, mirror_lang: await mirror.getAttribute('lang'), text: await mirror.textContent(),
      aria: await mirror.ariaSnapshot() });
    await page.screenshot({ path: path.join(dir, `tour-1-${tag}.png`) });
  }
  return opened;
}

// The tour, step by step: the step's state, its run, its screenshot, Next.
async function walkTour(page, steps, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const state = () => page.evaluate(() => document.body.dataset.wsaLabTour ?? '');
  const walked = [];
  for (let n = 1; n <= steps; n += 1) {
    await page.waitForFunction((n) => (document.body.dataset.wsaLabTour ?? '').startsWith(`${n}:`), n,
      { timeout: 30000, polling: 50 });
    let seconds = null;
    if ((await state()) === `${n}:pending`) {
      // The keyboard alone drives the tour: R runs the step, → goes on (the canvas has focus).
      await page.focus('canvas#wsa-lab');
      await page.keyboard.press('r');
      await page.waitForFunction((n) => document.body.dataset.wsaLabTour === `${n}:answered`
        && document.body.dataset.wsaLabBusy === 'no' && document.body.dataset.wsaLabTourSeconds !== ''
        || document.body.dataset.wsaLab === 'failed', n, { timeout: timeoutMs, polling: 50 });
      if (await page.evaluate(() => document.body.dataset.wsaLab) === 'failed') {
        throw new Error(`tour step ${n} failed: ${await page.textContent('#wsa-lab-result')}`);
      }
      seconds = Number(await page.evaluate(() => document.body.dataset.wsaLabTourSeconds));
    }
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(dir, `tour-${n}.png`) });
    // The same step on a phone held upright: the page lays itself out in one column.
    const wide = page.viewportSize();
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(dir, `tour-${n}-narrow.png`) });
    await page.setViewportSize(wide);
    await page.waitForTimeout(200);
    const claims = await page.evaluate(() => document.body.dataset.wsaLabTourClaims ?? '');
    // What a screen reader finds: the accessibility tree's snapshot of the tour's live region.
    const aria = await page.locator('#wsa-lab-tour-text').ariaSnapshot();
    walked.push({ step: n, seconds, claims, aria });
    console.error(`tour step ${n}: ${seconds === null ? 'answered already' : `${seconds.toFixed(2)} s from Run to the answer`}${claims ? `, claims held ${claims}` : ''}`);
    if (n === 2) {
      // The tour survives a reload: the address holds the step, and the page opens it again.
      await page.reload();
      await page.waitForFunction((n) => (document.body.dataset.wsaLabTour ?? '').startsWith(`${n}:`), n,
        { timeout: 30000, polling: 50 });
      if (!page.url().endsWith(`#tour=${n}`)) throw new Error(`after a reload the address is ${page.url()}`);
    }
    if (n < steps) {
      await page.focus('canvas#wsa-lab');
      await page.keyboard.press('ArrowRight');
    }
  }
  return walked;
}

// When the module was ready and what its download cost, from the page's own clock.
async function loadTimes(page) {
  return page.evaluate(() => {
    const wasm = performance.getEntriesByType('resource').find((r) => r.name.endsWith('.wasm'));
    return {
      module_ready_ms: Number(document.body.dataset.wsaLabModuleMs),
      wasm_fetch_ms: wasm ? Math.round(wasm.responseEnd - wasm.startTime) : null,
      wasm_bytes: wasm ? wasm.encodedBodySize : null,
    };
  });
}

// The breakdown of the page's time, on stderr: loading, each stage of the run, the frames.
function printBreakdown(load, timing, seconds) {
  const lines = [`page: module ready ${load.module_ready_ms} ms after navigation (wasm fetched in ${load.wasm_fetch_ms} ms, ${load.wasm_bytes} bytes)`];
  if (timing) {
    for (const [stage, at] of timing.stages) lines.push(`  ${at.toFixed(2).padStart(7)} s  ${stage}`);
    lines.push(`  ${timing.seconds.toFixed(2).padStart(7)} s  result (job start to result)`);
    lines.push(`  frames during the run: ${timing.frames}, building ${timing.frame_build_ms_mean.toFixed(1)} ms mean / ${timing.frame_build_ms_max.toFixed(1)} ms max, longest gap ${timing.frame_interval_ms_max.toFixed(0)} ms`);
  }
  lines.push(`  navigation to result: ${seconds.toFixed(1)} s`);
  console.error(lines.join('\n'));
}

// Clicks Cancel once the run is under way (two seconds after it started) and returns how long the
// page took to be idle again, and whether a result appeared anyway.
async function cancelRun(page) {
  await page.waitForFunction(() => document.body.dataset.wsaLabBusy === 'yes', null, { timeout: 60000, polling: 50 });
  await page.waitForTimeout(2000);
  // Frames drawn while the run went on: the page was not frozen.
  // Animation frames the page's thread ran in one second while the run went on (~60 when it is
  // free): the page was not frozen.
  const frames = await page.evaluate(() => new Promise((ok) => {
    let n = 0;
    const end = performance.now() + 1000;
    const tick = () => { n += 1; if (performance.now() < end) requestAnimationFrame(tick); else ok(n); };
    requestAnimationFrame(tick);
  }));
  // The page's own clock: when the click reached the page and when the page said it was idle,
  // so the latency of the page itself is told apart from the driver's round trips.
  await page.evaluate(() => {
    window.wsaLabCancel = {};
    document.querySelector('canvas').addEventListener('pointerdown', () => {
      window.wsaLabCancel.pointer_down_ms ??= performance.now();
    }, { capture: true });
    new MutationObserver(() => {
      if (document.body.dataset.wsaLabBusy === 'no') window.wsaLabCancel.idle_ms ??= performance.now();
    }).observe(document.body, { attributes: true, attributeFilter: ['data-wsa-lab-busy'] });
  });
  const clicked = Date.now();
  await click(page, 'cancel');
  await page.waitForFunction(() => document.body.dataset.wsaLabBusy === 'no', null, { timeout: 30000, polling: 10 });
  const seconds_to_idle = (Date.now() - clicked) / 1000;
  const inPage = await page.evaluate(() => window.wsaLabCancel);
  const page_ms_from_pointer_to_idle = Math.round(inPage.idle_ms - inPage.pointer_down_ms);
  await page.waitForTimeout(1000);
  const result_published = await page.evaluate(() => document.body.dataset.wsaLab === 'done');
  return { seconds_to_idle, page_ms_from_pointer_to_idle, animation_frames_in_one_second: frames, result_published };
}

// Presses Run in the top bar: at its published centre (`run`) once the app publishes one; until
// then Run is the button just left of Tour ("tour-start"), whose centre is RUN_LEFT_OF_TOUR CSS
// pixels left of Tour's (measured on a screenshot of 2026-12-04: Run spans x 100-138, Tour
// 147-189). A click that misses starts nothing, which the soak reports as such.
const RUN_LEFT_OF_TOUR = 49;
async function clickRun(page) {
  if (await page.evaluate(() => document.body.hasAttribute('data-wsa-lab-target-run'))) return click(page, 'run');
  await page.waitForFunction(() => document.body.hasAttribute('data-wsa-lab-target-tour-start'), null, { timeout: 20000 });
  const [x, y] = (await page.getAttribute('body', 'data-wsa-lab-target-tour-start')).split(',').map(Number);
  const canvas = await page.locator('canvas').first().boundingBox();
  await page.mouse.click(canvas.x + x - RUN_LEFT_OF_TOUR, canvas.y + y);
}

// The memory of the realm it runs in (the page, or a worker), after a full collection: its
// instance's wasm memory (the exports of the bundle's module, which its glue hands back once the
// instance is up, without starting another) and the JS heap in use, where the realm has
// performance.memory (Chromium's pages; not its workers).
async function realmMemory() {
  globalThis.gc?.();
  const glue = await import(new URL('/web/pkg/wsa_lab_web.js', location.href).href);
  const wasm = await glue.default();
  return { wasm: wasm.memory.buffer.byteLength, heap: glue.heap_bytes_in_use(),
    js: globalThis.performance?.memory?.usedJSHeapSize ?? null };
}

// Presses Run `runs` times in one page, each once the last result is in, and records the
// memory of the page and of its worker after each run.
async function soak(page, runs) {
  await page.waitForFunction(() => document.body.dataset.wsaLabModuleMs !== undefined, null, { timeout: 60000 });
  const series = [];
  const mb = (bytes) => (bytes === null ? '—' : (bytes / 2 ** 20).toFixed(2));
  const kb = (bytes) => (bytes / 2 ** 10).toFixed(1);
  console.error('soak: run  seconds  page wasm MB  worker wasm MB  page in use KB  worker in use KB  page JS heap MB  worker JS heap MB');
  for (let run = 1; run <= runs; run += 1) {
    await page.evaluate(() => { delete document.body.dataset.wsaLab; });
    const started = Date.now();
    await clickRun(page);
    await page.waitForFunction(() => document.body.dataset.wsaLabBusy === 'yes' || document.body.dataset.wsaLab,
      null, { timeout: 15000, polling: 20 }).catch(() => {
      throw new Error(`run ${run}: pressing Run started nothing (the test clicked beside the button?)`);
    });
    await page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.wsaLab)
      && document.body.dataset.wsaLabBusy === 'no', null, { timeout: timeoutMs, polling: 50 });
    if (await page.evaluate(() => document.body.dataset.wsaLab) === 'failed') {
      throw new Error(`run ${run} failed: ${await page.textContent('#wsa-lab-result')}`);
    }
    const seconds = (Date.now() - started) / 1000;
    const workers = page.workers();
    if (workers.length !== 1) throw new Error(`run ${run}: the page has ${workers.length} workers, not one`);
    const inPage = await page.evaluate(realmMemory);
    const inWorker = await workers[0].evaluate(realmMemory);
    const point = { run, seconds, page_wasm_bytes: inPage.wasm, worker_wasm_bytes: inWorker.wasm,
      page_heap_bytes: inPage.heap, worker_heap_bytes: inWorker.heap,
      page_js_heap_bytes: inPage.js, worker_js_heap_bytes: inWorker.js };
    series.push(point);
    console.error(`soak: ${String(run).padStart(3)}  ${seconds.toFixed(2).padStart(7)}  ${mb(point.page_wasm_bytes).padStart(12)}  `
      + `${mb(point.worker_wasm_bytes).padStart(14)}  ${kb(point.page_heap_bytes).padStart(14)}  ${kb(point.worker_heap_bytes).padStart(16)}  `
      + `${mb(point.page_js_heap_bytes).padStart(15)}  ${mb(point.worker_js_heap_bytes).padStart(17)}`);
  }
  return series;
}

// What the page logged, for the messages of a failure.
const console_lines = [];
// The way out once the browser is up: the browser and the server closed, then the exit code
// (the profile goes on exit, above).
async function finish(code) {
  await browser.close();
  await tracedBrowser?.close();
  server.close();
  process.exit(code);
}
const fail = async (message) => {
  console.error(message);
  if (violations.length) console.error(`policy violations:\n${violations.join('\n')}`);
  await finish(1);
};
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  const heard = (where, text) => {
    console_lines.push(`[${where}] ${text}`);
    if (violationMessage.test(text)) violations.push(`${where} console: ${text}`);
  };
  page.on('console', (m) => heard(m.type(), m.text()));
  page.on('worker', (w) => w.on('console', (m) => heard(`worker ${m.type()}`, m.text())));
  // A Rust panic in the page aborts the wasm instance ("unreachable"): nothing more will come.
  let crashed;
  const crash = new Promise((_, reject) => { crashed = reject; });
  page.on('pageerror', (e) => {
    heard('pageerror', e.message);
    if (e.message.includes('unreachable')) crashed(new Error('the page panicked'));
  });
  if (args.tour) {
    await page.goto(`http://127.0.0.1:${port}/index.html?device=cpu#tour=1`);
    const tour = await walkTour(page, Number(args.tour), args.shots ?? 'out/web');
    console.log(JSON.stringify({ tour, load: await loadTimes(page), security: await security(page), console: console_lines.slice(-20) }));
    await finish(0);
  }
  if (args.languages) {
    const languages = await openInLanguages(page, args.languages.split(','), args.shots ?? 'out/web');
    console.log(JSON.stringify({ languages, load: await loadTimes(page), security: await security(page), console: console_lines.slice(-20) }));
    await finish(0);
  }
  if (args.drop) {
    await page.goto(`http://127.0.0.1:${port}/index.html?device=cpu`);
    const drop = await dropAndCompare(page, args.drop.split(','));
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    const result = JSON.parse(await page.textContent('#wsa-lab-result'));
    console.log(JSON.stringify({ ...result, drop, load: await loadTimes(page), security: await security(page), console: console_lines.slice(-20) }));
    await finish(0);
  }
  const config = fs.readFileSync(args.config, 'utf8');
  if (args.soak) {
    // The experiment of the link, on the CPU (the soak measures the page, not a GPU), not started:
    // every run is a press of Run.
    await page.goto(`http://127.0.0.1:${port}/index.html?device=cpu#v1=${encodeURIComponent(config)}`);
    const series = await soak(page, Number(args.soak));
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    console.log(JSON.stringify({ soak: series, load: await loadTimes(page), security: await security(page), console: console_lines.slice(-20) }));
    await finish(0);
  }
  // Both paths ask for the GPU: the plain browser has none, so the page must fall back.
  const url = `http://127.0.0.1:${port}/index.html?autorun&device=gpu#v1=${encodeURIComponent(config)}`;
  await tracedBrowser?.startTracing(undefined, { path: args.trace, categories: ['disabled-by-default-v8.cpu_profiler', 'toplevel'] });
  const started = Date.now();
  await page.goto(url);
  if (args.cancel) {
    console.log(JSON.stringify({ cancel: await cancelRun(page), security: await security(page), console: console_lines.slice(-20) }));
  } else {
    try {
      // Done, failed, or the loader's error message (then there is nothing to wait for).
      await Promise.race([crash, page.waitForFunction(() => ['done', 'failed'].includes(document.body.dataset.wsaLab)
        || (document.getElementById('loading')?.textContent ?? '').includes('could not load'),
        null, { timeout: timeoutMs, polling: 100 })]);
      const loading = await page.evaluate(() => document.getElementById('loading')?.textContent ?? '');
      if (loading.includes('could not load')) throw new Error(loading);
      if (await page.evaluate(() => document.body.dataset.wsaLab) === 'failed') {
        throw new Error(`the run failed: ${await page.textContent('#wsa-lab-result')}`);
      }
    } catch (e) {
      if (args.screenshot) await page.screenshot({ path: args.screenshot });
      const shown = console_lines.length > 60 ? [...console_lines.slice(0, 30), '…', ...console_lines.slice(-30)] : console_lines;
      await fail(`no result (${e.message}); console:\n${shown.join('\n')}`);
    }
    const seconds = (Date.now() - started) / 1000;
    await tracedBrowser?.stopTracing();
    const result = JSON.parse(await page.textContent('#wsa-lab-result'));
    const load = await loadTimes(page);
    printBreakdown(load, result.timing, seconds);
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    // The plane and the Files tab are checked as cases of their own (tests/browser.rs): one that
    // fails is reported as "<part>_error" and the next still runs.
    const part = async (name, run) => {
      try { return await run(); } catch (e) {
        console.error(`the ${name} part failed: ${e.stack ?? e}`);
        if (args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, `-${name}-failed.png`) }).catch(() => {});
        return { [`${name}_error`]: `${e.stack ?? e}\nconsole:\n${console_lines.slice(-15).join('\n')}` };
      }
    };
    const plane = args.plane ? await part('plane', async () => ({ plane: await exercisePlane(page, args.plane) })) : {};
    const files = args.files ? await part('files', () => exerciseFiles(page, args.files)) : {};
    console.log(JSON.stringify({ ...result, ...plane, ...files, load, seconds_to_result: seconds,
      served_modules: servedModules, security: await security(page), console: console_lines.slice(-20) }));
  }
} catch (e) {
  const page = browser.pages()[0];
  if (page && args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-failed.png') }).catch(() => {});
  await fail(`browser test failed: ${e.stack ?? e}\nconsole:\n${console_lines.slice(-15).join('\n')}`);
}
await finish(0);
