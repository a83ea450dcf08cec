// Bundles the SDK into one ES module for pages (and the browser tests):
// build/sdk.js, with a source map.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
await build({
  absWorkingDir: root,
  entryPoints: ["src/index.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  sourcemap: true,
  outfile: "build/sdk.js",
  logLevel: "warning",
});
