// Starts the page's module (web/src/lib.rs), which opens WSA Lab on index.html's canvas. A file of
// its own rather than an inline script: the page's Content-Security-Policy (index.html) runs
// scripts from the page's origin only.
import init from './pkg/wsa_lab_web.js';

// When the module was ready (ms since the page's start), for the browser test's breakdown.
init().then(() => {
  document.body.dataset.wsaLabModuleMs = performance.now().toFixed(0);
  document.getElementById('loading').remove();
}).catch((e) => {
  document.getElementById('loading').textContent = 'WSA Lab could not load: ' + e;
});
