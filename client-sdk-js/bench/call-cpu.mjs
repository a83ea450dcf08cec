// The CPU a call costs the browsers, with and without E2EE: N Chromium
// processes (one per participant) join one room through the sfu, each
// publishing the fake camera and microphone and rendering everyone else.
// After a warm-up, the CPU time of every Chromium process (and of the sfu)
// is read from /proc over a window, with the frames each page encoded,
// decoded and spent in the E2EE worker's wasm in that window.
//
// A measurement, not a test: the numbers depend on the machine. Build first
// (scripts/browser-test.sh builds everything it needs, e.g. with a test file
// as its argument), then:
//
//   node client-sdk-js/bench/call-cpu.mjs [--browsers 4] [--seconds 30]
//        [--warmup 10] [--width 640 --height 360] [--json out.json]
//
// SFU_BIN picks the sfu binary (default: the workspace's debug build).
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { launchBrowser, openPage, servePages } from "../test/harness/pages.mjs";
import { startSfu } from "../test/harness/sfu.mjs";
import { mintToken } from "../test/harness/token.mjs";

const { values: opt } = parseArgs({
  options: {
    browsers: { type: "string", default: "4" },
    seconds: { type: "string", default: "30" },
    warmup: { type: "string", default: "10" },
    width: { type: "string", default: "640" },
    height: { type: "string", default: "360" },
    json: { type: "string" },
  },
});
const N = Number(opt.browsers);
const WINDOW_S = Number(opt.seconds);
const video = { width: Number(opt.width), height: Number(opt.height) };
const TICKS_PER_S = 100; // USER_HZ on Linux

/** utime + stime of every live process, in clock ticks, by pid; and each one's parent. */
function processTable() {
  const table = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(Number(name), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // It exited while we looked.
    }
  }
  return table;
}

/** Every descendant of `root` in `table`, `root` included. */
function tree(table, root) {
  const out = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of table) {
      if (!out.has(pid) && out.has(p.ppid)) {
        out.add(pid);
        grew = true;
      }
    }
  }
  return out;
}

/** CPU ticks of the browsers (our descendants but the sfu) and of the sfu. */
function cpu(sfuPid) {
  const table = processTable();
  const sfu = tree(table, sfuPid);
  let browsers = 0;
  let sfuTicks = 0;
  for (const pid of tree(table, process.pid)) {
    if (pid === process.pid) continue;
    if (sfu.has(pid)) sfuTicks += table.get(pid).ticks;
    else browsers += table.get(pid).ticks;
  }
  return { browsers, sfu: sfuTicks };
}

async function sample(pages) {
  return Promise.all(
    pages.map(async (p) => {
      const [inbound, outbound, e2ee] = await Promise.all([
        p.evaluate(() => harness.inbound()),
        p.evaluate(() => harness.outbound()),
        p.evaluate(() => harness.e2ee()),
      ]);
      const sum = (list, kind, key) => list.filter((s) => s.kind === kind).reduce((n, s) => n + s[key], 0);
      return {
        decoded: sum(inbound, "video", "framesDecoded"),
        encoded: sum(outbound, "video", "framesEncoded"),
        wasmMs: e2ee.stats === undefined ? 0 : ["encrypt", "decrypt"].reduce((n, d) => n + e2ee.stats[d].audio.ms + e2ee.stats[d].video.ms, 0),
      };
    }),
  );
}

async function until(what, probe, done, limitMs = 60_000) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (done(await probe())) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not reached within ${limitMs} ms`);
}

async function run(e2ee) {
  const pagesServer = await servePages();
  const sfu = await startSfu({ args: ["--allowed-origins", pagesServer.origin] });
  const browsers = [];
  try {
    const pages = [];
    for (let i = 0; i < N; i++) {
      const browser = await launchBrowser();
      browsers.push(browser);
      const page = await openPage(browser, pagesServer.origin);
      const token = mintToken({ room: "cpu", identity: `p${i}` });
      await page.evaluate(([u, t, o]) => harness.join(u, t, o), [sfu.wsUrl, token, { e2ee }]);
      await page.evaluate((v) => harness.publishFakeMedia(v), video);
      pages.push(page);
    }
    await until(
      "every page decoding every other",
      () => Promise.all(pages.map((p) => p.evaluate(() => harness.inbound()))),
      (all) => all.every((streams) => streams.filter((s) => s.kind === "video" && s.framesDecoded > 30).length === N - 1),
    );
    await new Promise((r) => setTimeout(r, Number(opt.warmup) * 1000));
    const [c0, s0] = [cpu(sfu.pid), await sample(pages)];
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const [c1, s1] = [cpu(sfu.pid), await sample(pages)];
    const seconds = (Date.now() - t0) / 1000;
    const per = (key) => s1.reduce((n, s, i) => n + s[key] - s0[i][key], 0);
    const failures = await Promise.all(pages.map((p) => p.evaluate(() => harness.e2ee().decryptFailures)));
    for (const p of pages) await p.evaluate(() => harness.leave());
    return {
      e2ee,
      seconds: Math.round(seconds * 10) / 10,
      browserCpuPercent: Math.round(((c1.browsers - c0.browsers) / TICKS_PER_S / seconds) * 1000) / 10,
      sfuCpuPercent: Math.round(((c1.sfu - c0.sfu) / TICKS_PER_S / seconds) * 1000) / 10,
      wasmCpuPercent: Math.round((per("wasmMs") / 1000 / seconds) * 1000) / 10,
      videoFramesEncodedPerSecond: Math.round(per("encoded") / seconds),
      videoFramesDecodedPerSecond: Math.round(per("decoded") / seconds),
      decryptFailures: failures.reduce((n, f) => n + Object.entries(f).filter(([k]) => k !== "beforeJoin").reduce((m, [, v]) => m + v, 0), 0),
    };
  } finally {
    for (const b of browsers) await b.close();
    await pagesServer.close();
    await sfu.stop();
  }
}

const results = [];
for (const e2ee of [false, true]) {
  const r = await run(e2ee);
  results.push(r);
  console.log(JSON.stringify(r));
}
const report = { browsers: N, video, cores: (await import("node:os")).cpus().length, results };
if (opt.json) writeFileSync(opt.json, `${JSON.stringify(report, null, 2)}\n`);
console.log(
  `${N} browsers, ${video.width}x${video.height}: ` +
    results.map((r) => `E2EE ${r.e2ee ? "on" : "off"}: browsers ${r.browserCpuPercent}% CPU, wasm ${r.wasmCpuPercent}%, sfu ${r.sfuCpuPercent}%, ${r.videoFramesDecodedPerSecond} frames decoded/s`).join("; "),
);
