// Drives the web page in Debian's headless Chromium (playwright-core, no browser download):
// serves the repository root, opens index.html with an experiment link and ?autorun, waits
// for the page to publish its result (<pre id="wsa-lab-result">, body[data-wsa-lab=done]),
// prints that result as JSON on stdout and saves a screenshot.
//
//   node web/tests/browser.mjs --path cpu|webgpu --config <config.json> --screenshot <file.png>
//
// The page is asked for the GPU on both paths. "cpu": a plain headless browser, which offers no
// WebGPU adapter, so the page must fall back to the CPU backend. "webgpu": Chromium's
// SwiftShader WebGPU adapter.
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

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = http.createServer((req, res) => {
  const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
  if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    const index = path.join(file, 'index.html');
    if (fs.existsSync(index)) { res.writeHead(200, { 'content-type': 'text/html' }); return fs.createReadStream(index).pipe(res); }
    res.writeHead(404); return res.end();
  }
  res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
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
  args: args.path === 'webgpu' ? [...base, ...webgpu] : base,
  viewport: { width: 1280, height: 820 },
});
const fail = async (message) => {
  console.error(message);
  await browser.close();
  server.close();
  process.exit(1);
};
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  const console_lines = [];
  page.on('console', (m) => console_lines.push(`[${m.type()}] ${m.text()}`));
  // A Rust panic in the page aborts the wasm instance ("unreachable"): nothing more will come.
  let crashed;
  const crash = new Promise((_, reject) => { crashed = reject; });
  page.on('pageerror', (e) => {
    console_lines.push(`[pageerror] ${e.message}`);
    if (e.message.includes('unreachable')) crashed(new Error('the page panicked'));
  });
  // Dawn reports a WGSL error only as "Invalid ShaderModule"; this logs the compiler's message
  // and the offending lines, so a failure names the shader.
  await page.addInitScript(() => {
    if (!globalThis.GPUDevice) return;
    const create = GPUDevice.prototype.createShaderModule;
    GPUDevice.prototype.createShaderModule = function (descriptor) {
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
  });
  const config = fs.readFileSync(args.config, 'utf8');
  // Both paths ask for the GPU: the plain browser has none, so the page must fall back.
  const url = `http://127.0.0.1:${port}/index.html?autorun&device=gpu#v1=${encodeURIComponent(config)}`;
  const started = Date.now();
  await page.goto(url);
  try {
    // Done, or the loader's error message (then there is nothing to wait for).
    await Promise.race([crash, page.waitForFunction(() => document.body.dataset.wsaLab === 'done'
      || (document.getElementById('loading')?.textContent ?? '').includes('could not load'),
      null, { timeout: timeoutMs, polling: 500 })]);
    const loading = await page.evaluate(() => document.getElementById('loading')?.textContent ?? '');
    if (loading.includes('could not load')) throw new Error(loading);
  } catch (e) {
    if (args.screenshot) await page.screenshot({ path: args.screenshot });
    const shown = console_lines.length > 60 ? [...console_lines.slice(0, 30), '…', ...console_lines.slice(-30)] : console_lines;
    await fail(`no result (${e.message}); console:\n${shown.join('\n')}`);
  }
  const seconds = (Date.now() - started) / 1000;
  const result = JSON.parse(await page.textContent('#wsa-lab-result'));
  if (args.screenshot) await page.screenshot({ path: args.screenshot });
  console.log(JSON.stringify({ ...result, seconds_to_result: seconds, console: console_lines.slice(-20) }));
} catch (e) {
  await fail(`browser test failed: ${e.stack ?? e}`);
}
await browser.close();
server.close();
