// Bundles the app into OUT_DIR (default dist/): app.js (the app with the
// SDK, from source), e2ee-worker.js (the SDK's E2EE worker), index.html and
// app.css. The wasm engine (OUT_DIR/wasm/) comes from scripts/wasm-engine.sh;
// scripts/webapp-build.sh runs both. esbuild is the SDK's own (its pinned
// version in client-sdk-js/package-lock.json), so one install serves both
// and the output is the same bytes on every machine.
import { copyFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const app = fileURLToPath(new URL("..", import.meta.url));
const sdk = fileURLToPath(new URL("../../client-sdk-js/", import.meta.url));
const { build } = createRequire(`${sdk}package.json`)("esbuild");
const out = resolve(process.argv[2] ?? `${app}dist`);

await mkdir(out, { recursive: true });
const common = {
  // Paths in the output (comments, none with minify) are relative to this.
  absWorkingDir: app,
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
};
await Promise.all([
  build({ ...common, entryPoints: ["src/main.ts"], outfile: `${out}/app.js` }),
  build({ ...common, entryPoints: [`${sdk}src/e2ee-worker.ts`], outfile: `${out}/e2ee-worker.js` }),
  copyFile(`${app}src/index.html`, `${out}/index.html`),
  copyFile(`${app}src/app.css`, `${out}/app.css`),
]);
