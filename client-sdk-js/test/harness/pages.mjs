// Serves the test page and the SDK bundle on 127.0.0.1 (a secure context,
// so getUserMedia works; another address needs Chromium's
// --unsafely-treat-insecure-origin-as-secure), and drives Debian's Chromium
// with playwright-core.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = fileURLToPath(new URL("../..", import.meta.url));
const files = {
  "/": ["test/page.html", "text/html"],
  "/sdk.js": ["build/sdk.js", "text/javascript"],
  "/sdk.js.map": ["build/sdk.js.map", "application/json"],
  "/e2ee-worker.js": ["build/e2ee-worker.js", "text/javascript"],
  "/e2ee-worker.js.map": ["build/e2ee-worker.js.map", "application/json"],
  "/wasm/e2ee_wasm.js": ["build/wasm/e2ee_wasm.js", "text/javascript"],
  "/wasm/e2ee_wasm_bg.wasm": ["build/wasm/e2ee_wasm_bg.wasm", "application/wasm"],
};

/** Starts the page server on `host` (an IPv4 address); resolves with `{ origin, close }`. */
export function servePages({ host = "127.0.0.1" } = {}) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const file = files[path];
    if (path === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(`${root}${file[0]}`);
      res.writeHead(200, { "content-type": file[1], "cache-control": "no-store" }).end(body);
    } catch {
      res.writeHead(500).end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, host, () => {
      const { port } = server.address();
      resolve({
        origin: `http://${host}:${port}`,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}

/** Chromium's flags: headless, fake camera and mic, loopback ICE, no background traffic. */
export const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--allow-loopback-in-peer-connection",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
];

/** The Chromium the tests drive: $CHROMIUM, or Debian's. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * Launches {@link CHROMIUM} (or `executablePath`, e.g. a wrapper that runs
 * it elsewhere), with `args` after {@link CHROMIUM_ARGS}.
 */
export function launchBrowser({ args = [], executablePath = CHROMIUM } = {}) {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    timeout: 30_000,
  });
}

/**
 * Opens the test page in a new context of `browser`; page console errors
 * and exceptions are collected in `page.problems`.
 */
export async function openPage(browser, origin) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(`console: ${m.text()}`);
  });
  await page.goto(origin);
  await page.waitForFunction(() => window.harness !== undefined);
  return page;
}
