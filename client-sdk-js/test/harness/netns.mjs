// A network namespace joined to the host by a veth pair, for a test that
// needs one browser behind a link it can throttle: the host end gets
// 10.201.X.1/30, the namespace end 10.201.X.2/30, and a token bucket (tbf)
// on the host end limits what the host sends into the namespace. Nothing
// else is routed: traffic stays on these two interfaces and loopback.
// Needs root (CAP_NET_ADMIN) and the ip and tc tools: `netnsUnavailable`
// says why not, for a test to skip with, and `createNetns` throws.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs a command whose failure must not stop a cleanup; returns whether it succeeded. */
function attempt(cmd, args) {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

/** A third octet for 10.201.X.0/30 that no interface here uses yet, derived from the pid. */
function freeOctet() {
  const used = run("ip", ["-o", "-4", "addr", "show"]);
  for (let i = 0; i < 250; i++) {
    const x = ((process.pid + i) % 250) + 1;
    if (!used.includes(`10.201.${x}.`)) return x;
  }
  throw new Error("no free 10.201.X.0/30 subnet for the test's veth pair");
}

/** Whether `cmd` runs here (`cmd -V` answers). */
function present(cmd) {
  try {
    execFileSync(cmd, ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Whether process `pid` still runs. */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

/**
 * Deletes the namespaces (and host ends) of earlier runs whose process is
 * gone: one killed outright (SIGKILL, a timeout's) had no chance to.
 */
function removeStale() {
  const names = run("ip", ["netns", "list"]).split("\n").map((l) => l.split(" ")[0]);
  for (const name of names) {
    const pid = /^sdktest-(\d+)$/.exec(name)?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    attempt("ip", ["netns", "del", name]);
  }
  // A host end outlives its namespace while a process (a Chromium) still ran in it.
  for (const m of run("ip", ["-o", "link", "show"]).matchAll(/^\d+: (vsh(\d+))@/gm)) {
    if (!alive(Number(m[2]))) attempt("ip", ["link", "del", m[1]]);
  }
}

/**
 * Why {@link createNetns} cannot work here (not root, no `ip` or `tc`), or
 * undefined when it can: a test skips with this reason.
 */
export function netnsUnavailable() {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return "needs root: it creates a network namespace and a veth pair (ip netns, ip link) and throttles the link with tc";
  }
  const missing = ["ip", "tc"].filter((cmd) => !present(cmd));
  if (missing.length > 0) return `needs the ${missing.join(" and ")} tool${missing.length > 1 ? "s" : ""} (iproute2)`;
  return undefined;
}

/**
 * Creates the namespace, the veth pair and a Chromium wrapper that runs
 * `chromium` inside the namespace. Returns `{ name, hostIp, nsIp, hostIf,
 * chromium, limit(tbfArgs), unlimit(), stats(), destroy() }`; `destroy`
 * is idempotent and also runs when the process exits or is interrupted;
 * what a killed run left is removed by the next.
 */
export function createNetns({ chromium }) {
  const unavailable = netnsUnavailable();
  if (unavailable !== undefined) throw new Error(`cannot create the test's network namespace: ${unavailable}`);
  const tag = `${process.pid}`;
  const name = `sdktest-${tag}`;
  const hostIf = `vsh${tag}`.slice(0, 15);
  const nsIf = `vsn${tag}`.slice(0, 15);
  let dir;
  let destroyed = false;
  // On SIGINT or SIGTERM (Ctrl-C, a runner's timeout) clean up, then die of it.
  const onSignal = (signal) => {
    destroy();
    process.exit(128 + constants.signals[signal]);
  };
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    process.off("exit", destroy);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    attempt("ip", ["netns", "del", name]);
    // Deleting the namespace deletes its end of the pair and so the pair; this is for a half-made setup.
    attempt("ip", ["link", "del", hostIf]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", destroy);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    removeStale();
    const x = freeOctet();
    const hostIp = `10.201.${x}.1`;
    const nsIp = `10.201.${x}.2`;
    run("ip", ["netns", "add", name]);
    run("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
    run("ip", ["link", "set", nsIf, "netns", name]);
    run("ip", ["addr", "add", `${hostIp}/30`, "dev", hostIf]);
    run("ip", ["link", "set", hostIf, "up"]);
    run("ip", ["netns", "exec", name, "ip", "addr", "add", `${nsIp}/30`, "dev", nsIf]);
    run("ip", ["netns", "exec", name, "ip", "link", "set", nsIf, "up"]);
    run("ip", ["netns", "exec", name, "ip", "link", "set", "lo", "up"]);
    dir = mkdtempSync(join(tmpdir(), "sdktest-netns-"));
    const wrapper = join(dir, "chromium-in-netns");
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${name} ${chromium} "$@"\n`);
    chmodSync(wrapper, 0o755);
    return {
      name,
      hostIp,
      nsIp,
      hostIf,
      chromium: wrapper,
      /** Puts a token bucket on what the host sends into the namespace, e.g. `["rate", "300kbit", "burst", "16kb", "latency", "100ms"]`. */
      limit: (tbf) => run("tc", ["qdisc", "replace", "dev", hostIf, "root", "tbf", ...tbf]),
      /** Takes the limit off. */
      unlimit: () => run("tc", ["qdisc", "del", "dev", hostIf, "root"]),
      /** What the limit dropped and sent so far (`tc -s`), for the report. */
      stats: () => run("tc", ["-s", "qdisc", "show", "dev", hostIf]),
      destroy,
    };
  } catch (error) {
    destroy();
    const detail = error.stderr ? `${String(error.stderr).trim()} ` : "";
    throw new Error(`cannot set up the test's network namespace (needs root, ip and tc): ${detail}${error.message}`);
  }
}
