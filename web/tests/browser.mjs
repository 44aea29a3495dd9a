// Drives the web page in Debian's headless Chromium (playwright-core, no browser download):
// serves the repository root, opens index.html with an experiment link and ?autorun, waits
// for the page to publish its result (<pre id="wsa-lab-result">, body[data-wsa-lab=done]),
// prints that result as JSON on stdout and saves a screenshot.
//
//   node web/tests/browser.mjs --path cpu|webgpu|webgpu-fault --config <config.json>
//        --screenshot <file.png> [--files <dir>]
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
// With --tour <steps> --shots <dir>, the page opens at #tour=1 (no experiment, no autorun) and
// the test goes through every step like a class: runs the step (the "Run this step" button)
// unless its answer is already on screen, waits for the answer, saves <dir>/tour-N.png and clicks
// Next; after step 2 it reloads the page, which must come back at step 2. The result JSON is then
// {"tour": [{step, seconds, claims}], "load": ...}.
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

// The modules the page and its worker fetched, in order: the WebGPU one only for GPU work where
// the browser has an adapter.
const servedModules = [];
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    const index = path.join(file, 'index.html');
    if (fs.existsSync(index)) { res.writeHead(200, { 'content-type': 'text/html' }); return fs.createReadStream(index).pipe(res); }
    res.writeHead(404); return res.end();
  }
  if (file.endsWith('.wasm')) servedModules.push(path.relative(root, file));
  res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
  if (file === path.join(root, 'web/worker.js') && args.path.startsWith('webgpu')) {
    return res.end(`(${shaderHook.toString()})(${args.path === 'webgpu-fault' ? 12 : 0});\n${fs.readFileSync(file, 'utf8')}`);
  }
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const port = server.address().port;

const base = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const webgpu = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader'];
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsa-lab-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: args.path.startsWith('webgpu') ? [...base, ...webgpu] : base,
  acceptDownloads: true,
  viewport: { width: 1280, height: 820 },
});
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
      await click(page, 'tour-run');
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
    const claims = await page.evaluate(() => document.body.dataset.wsaLabTourClaims ?? '');
    walked.push({ step: n, seconds, claims });
    console.error(`tour step ${n}: ${seconds === null ? 'answered already' : `${seconds.toFixed(2)} s from Run to the answer`}${claims ? `, claims held ${claims}` : ''}`);
    if (n === 2) {
      // The tour survives a reload: the address holds the step, and the page opens it again.
      await page.reload();
      await page.waitForFunction((n) => (document.body.dataset.wsaLabTour ?? '').startsWith(`${n}:`), n,
        { timeout: 30000, polling: 50 });
      if (!page.url().endsWith(`#tour=${n}`)) throw new Error(`after a reload the address is ${page.url()}`);
    }
    if (n < steps) await click(page, 'tour-next');
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

// What the page logged, for the messages of a failure.
const console_lines = [];
const fail = async (message) => {
  console.error(message);
  await browser.close();
  server.close();
  process.exit(1);
};
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  page.on('console', (m) => console_lines.push(`[${m.type()}] ${m.text()}`));
  page.on('worker', (w) => w.on('console', (m) => console_lines.push(`[worker ${m.type()}] ${m.text()}`)));
  // A Rust panic in the page aborts the wasm instance ("unreachable"): nothing more will come.
  let crashed;
  const crash = new Promise((_, reject) => { crashed = reject; });
  page.on('pageerror', (e) => {
    console_lines.push(`[pageerror] ${e.message}`);
    if (e.message.includes('unreachable')) crashed(new Error('the page panicked'));
  });
  if (args.tour) {
    await page.goto(`http://127.0.0.1:${port}/index.html?device=cpu#tour=1`);
    const tour = await walkTour(page, Number(args.tour), args.shots ?? 'out/web');
    console.log(JSON.stringify({ tour, load: await loadTimes(page), console: console_lines.slice(-20) }));
    await browser.close();
    server.close();
    process.exit(0);
  }
  const config = fs.readFileSync(args.config, 'utf8');
  // Both paths ask for the GPU: the plain browser has none, so the page must fall back.
  const url = `http://127.0.0.1:${port}/index.html?autorun&device=gpu#v1=${encodeURIComponent(config)}`;
  const started = Date.now();
  await page.goto(url);
  if (args.cancel) {
    console.log(JSON.stringify({ cancel: await cancelRun(page), console: console_lines.slice(-20) }));
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
    const result = JSON.parse(await page.textContent('#wsa-lab-result'));
    const load = await loadTimes(page);
    printBreakdown(load, result.timing, seconds);
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    const plane = args.plane ? { plane: await exercisePlane(page, args.plane) } : {};
    const files = args.files ? await exerciseFiles(page, args.files) : {};
    console.log(JSON.stringify({ ...result, ...plane, ...files, load, seconds_to_result: seconds,
      served_modules: servedModules, console: console_lines.slice(-20) }));
  }
} catch (e) {
  const page = browser.pages()[0];
  if (page && args.screenshot) await page.screenshot({ path: args.screenshot.replace(/\.png$/, '-failed.png') }).catch(() => {});
  await fail(`browser test failed: ${e.stack ?? e}\nconsole:\n${console_lines.slice(-15).join('\n')}`);
}
await browser.close();
server.close();
