// Bundles the SDK into one ES module for pages (and the browser tests):
// build/sdk.js, and its E2EE worker, build/e2ee-worker.js (which loads the
// wasm engine from build/wasm/, made by scripts/browser-test.sh), with
// source maps.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const common = {
  absWorkingDir: root,
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  sourcemap: true,
  logLevel: "warning",
};
await Promise.all([
  build({ ...common, entryPoints: ["src/index.ts"], outfile: "build/sdk.js" }),
  build({ ...common, entryPoints: ["src/e2ee-worker.ts"], outfile: "build/e2ee-worker.js" }),
]);
