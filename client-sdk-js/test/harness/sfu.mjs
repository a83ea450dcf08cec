// Starts the real `sfu` binary on loopback (or another local address) with ephemeral ports, one media
// shard and JSON logs, and waits for its "sfu listening" line, which names
// the HTTP address. Its log is kept for failure reports.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../..", import.meta.url));

/** The sfu binary the tests run: $SFU_BIN, or the workspace's debug build. */
export function sfuBinary() {
  const bin = process.env.SFU_BIN ?? `${repo}target/debug/sfu`;
  if (!existsSync(bin)) throw new Error(`no sfu binary at ${bin}: run cargo build -p sfu`);
  return bin;
}

/**
 * The SFU charges each participant the wall time the media shard spends on
 * its SDP and candidates (100 ms burst, 10 ms/s by default). The debug
 * build, sharing two cores with the Chromiums, spends more than that on a
 * browser's first camera and microphone offers, and the second publish is
 * refused with `rate_limited`; the tests give it room.
 */
const TEST_ARGS = ["--negotiation-time-burst", "10s", "--negotiation-time-per-second", "1s"];

/**
 * Starts the SFU, its HTTP and media sockets on `host`. Resolves with
 * `{ pid, http, wsUrl, log, metric, stop }` once it listens; rejects if it
 * exits first or does not listen within `timeoutMs`. A `host` other than
 * loopback needs an API key and secret (`--api-key`, and `SFU_API_SECRET`
 * in `env`, which unlike a flag does not show in the process list).
 */
export function startSfu({ args = [], env: extra = {}, host = "127.0.0.1", timeoutMs = 20_000 } = {}) {
  // Only the flags and `extra` given here configure it: no SFU_* from the caller.
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SFU_"))), ...extra };
  const child = spawn(
    sfuBinary(),
    ["--http-bind", `${host}:0`, "--media-bind", `${host}:0`, "--shards", "1", "--log-format", "json", ...TEST_ARGS, ...args],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  const log = [];
  let pending = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sfu did not listen within ${timeoutMs} ms:\n${log.join("\n")}`));
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sfu exited (${code ?? signal}) before listening:\n${log.join("\n")}`));
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        log.push(line);
        if (!line.includes('"sfu listening"')) continue;
        const http = /"http":"([^"]+)"/.exec(line)?.[1];
        if (http === undefined) continue;
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve({ pid: child.pid, http, wsUrl: `ws://${http}/rtc`, log, metric: (name) => metric(http, name), stop: () => stop(child) });
      }
    });
  });
}

/** The value of one unlabelled metric from `/metrics`, or undefined. */
async function metric(http, name) {
  const text = await (await fetch(`http://${http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

/** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
