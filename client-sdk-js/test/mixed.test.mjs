// A mixed room: two Chromium pages and one native client-sdk member
// (`participant`, a loadtest binary sending real VP8 and Opus from
// committed clips) in one end-to-end encrypted room for 30 s. Every member
// decodes (browsers) or decrypts (native) every other member's video and
// audio, with no decrypt failure once the group holds all three; 300 chat
// messages, 100 from each, arrive in one order everywhere; all three show
// the same verification code for the epoch they share.
//
// Everything is on loopback. Waits are bounded by frame and message counts,
// with deadlines that only turn a hang into a failure.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { assertNoProblems, failureTotal, until, useFixture } from "./harness/fixture.mjs";
import { mintToken } from "./harness/token.mjs";

const ROOM = "mixed";
const RUN_S = 30;
const CHATS_EACH = 100;
const CHAT_INTERVAL_MS = 100;
/** Least frames and packets each member must get from each other over the run (30 fps, 50 packets/s). */
const MIN_VIDEO_FRAMES = 300;
const MIN_AUDIO_PACKETS = 500;

const repo = fileURLToPath(new URL("../..", import.meta.url));
const f = useFixture();

/** The native member's binary: $PARTICIPANT_BIN, or the workspace's debug build. */
function participantBinary() {
  const bin = process.env.PARTICIPANT_BIN ?? `${repo}target/debug/participant`;
  if (!existsSync(bin)) throw new Error(`no participant binary at ${bin}: run cargo build -p loadtest --bin participant`);
  return bin;
}

/** Starts the native member; resolves with its JSON summary when it exits. */
function startNative(identity) {
  const child = spawn(
    participantBinary(),
    [
      "--url", f.sfu.wsUrl, "--room", ROOM, "--expect-members", "3", "--duration", `${RUN_S}s`,
      "--chat", String(CHATS_EACH), "--chat-interval", `${CHAT_INTERVAL_MS}ms`, "--expect-chat", String(3 * CHATS_EACH),
      "--linger", "60s",
    ],
    { env: { ...process.env, PARTICIPANT_TOKEN: mintToken({ room: ROOM, identity }) }, stdio: ["pipe", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const done = new Promise((resolve, reject) => {
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`participant exited with ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()));
      } catch (e) {
        reject(new Error(`participant summary: ${e.message}: ${out.slice(-500)}`));
      }
    });
  });
  return { child, done };
}

async function joinBrowser(identity) {
  const page = await f.page();
  const token = mintToken({ room: ROOM, identity });
  await page.evaluate(([u, t]) => harness.join(u, t), [f.sfu.wsUrl, token]);
  await page.evaluate(() => harness.publishFakeMedia());
  return { page, identity, participantId: await page.evaluate(() => harness.participantId()) };
}

/** Per remote participant id: the page's decoded video frames and received audio packets. */
async function receivedBy(page) {
  const [streams, tracks] = await page.evaluate(async () => [await harness.inbound(), harness.remoteTracks()]);
  const byPid = {};
  for (const s of streams) {
    const t = tracks.find((x) => x.mid === s.mid);
    if (!t) continue;
    const r = (byPid[t.participantId] ??= { video: 0, audio: 0 });
    if (s.kind === "video") r.video += s.framesDecoded;
    else r.audio += s.packetsReceived;
  }
  return byPid;
}

const failureCounts = async (page) => (await page.evaluate(() => harness.e2ee())).decryptFailures;
const failures = async (page) => failureTotal(await failureCounts(page));

test("two browsers and a native member share one E2EE room for 30 s", { timeout: 240_000 }, async () => {
  const native = startNative("native");
  const browsers = [await joinBrowser("alice"), await joinBrowser("bob")];

  // All three in one group: same epoch and code on both pages.
  for (const b of browsers) {
    await until(`${b.identity} in the three-member group`, () => b.page.evaluate(() => harness.e2ee()), (s) => s.roster.length === 3, 60_000);
  }
  // Each page decodes the other two (the native member included) before the baseline is taken.
  const others = (b) => browsers.filter((x) => x !== b).map((x) => x.participantId);
  for (const b of browsers) {
    await until(`${b.identity} decoding everyone`, () => receivedBy(b.page), (r) => {
      const pids = Object.keys(r);
      return pids.length === 2 && others(b).every((p) => r[p]?.video > 0) && pids.every((p) => r[p].video > 0 && r[p].audio > 0);
    }, 60_000);
  }
  const states = await Promise.all(browsers.map((b) => b.page.evaluate(() => harness.e2ee())));
  const baseline = await Promise.all(browsers.map((b) => failures(b.page)));
  // A leaving member's streams vanish from the page's stats, so keep the
  // highest counts seen while the run lasts.
  const received = browsers.map(() => ({}));
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [i, b] of browsers.entries()) {
        for (const [pid, r] of Object.entries(await receivedBy(b.page))) {
          const best = (received[i][pid] ??= { video: 0, audio: 0 });
          best.video = Math.max(best.video, r.video);
          best.audio = Math.max(best.audio, r.audio);
        }
        // MIXED_TRACE=1 logs each page's epoch and failures every half second.
        if (process.env.MIXED_TRACE) {
          const st = await b.page.evaluate(() => harness.e2ee());
          console.log(`${Date.now() % 100000} ${b.identity} epoch ${st.epoch} roster ${st.roster.length} failures ${JSON.stringify(st.decryptFailures)}`);
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();

  // Chat: 100 from each page, paced like the native member's.
  await Promise.all(
    browsers.map((b) =>
      b.page.evaluate(async ([id, n, ms]) => {
        for (let i = 0; i < n; i++) {
          harness.sendChat(`${id}#${i}`);
          await new Promise((r) => setTimeout(r, ms));
        }
      }, [b.identity, CHATS_EACH, CHAT_INTERVAL_MS]),
    ),
  );
  const summary = await native.done;
  sampling = false;
  await sampler;
  const chats = await Promise.all(
    browsers.map((b) => until(`${b.identity}: all chat`, () => b.page.evaluate(() => harness.chats()), (c) => c.length >= 3 * CHATS_EACH, 60_000)),
  );
  const after = await Promise.all(browsers.map((b) => failures(b.page)));

  // What each member got from each other member.
  const nativePid = summary.participant_id;
  const names = Object.fromEntries([[nativePid, "native"], ...browsers.map((b) => [b.participantId, b.identity])]);
  for (const [i, b] of browsers.entries()) {
    for (const [pid, r] of Object.entries(received[i])) {
      console.log(`${b.identity} from ${names[pid]}: video frames decoded ${r.video}, audio packets ${r.audio}`);
      assert.ok(r.video >= MIN_VIDEO_FRAMES, `${b.identity}: video from ${names[pid]}: ${r.video}`);
      assert.ok(r.audio >= MIN_AUDIO_PACKETS, `${b.identity}: audio from ${names[pid]}: ${r.audio}`);
    }
    assert.deepEqual(Object.keys(received[i]).sort(), [nativePid, ...others(b)].sort());
    assert.equal(after[i], baseline[i], `${b.identity}: decrypt failures after the group formed: ${JSON.stringify(await failureCounts(b.page))}`);
  }
  for (const t of summary.tracks) {
    console.log(`native from ${t.identity}: ${t.kind} frames decrypted ${t.frames} (keyframes ${t.keyframes}, invalid ${t.invalid})`);
  }
  for (const b of browsers) {
    for (const kind of ["audio", "video"]) {
      const t = summary.tracks.find((x) => x.identity === b.identity && x.kind === kind);
      assert.ok(t, `native: no ${kind} track from ${b.identity}`);
      const min = kind === "video" ? MIN_VIDEO_FRAMES : MIN_AUDIO_PACKETS;
      assert.ok(t.frames >= min, `native: ${kind} from ${b.identity}: ${t.frames}`);
      assert.equal(t.invalid, 0, `native: ${kind} from ${b.identity}: undecodable frames`);
    }
  }
  assert.equal(summary.decrypt_failures_after_join.total, 0, JSON.stringify(summary.decrypt_failures_after_join));

  // One chat order everywhere.
  const nativeChat = summary.chat.map((c) => `${c.from}: ${c.text}`);
  assert.equal(nativeChat.length, 3 * CHATS_EACH);
  assert.deepEqual(chats[0], nativeChat);
  assert.deepEqual(chats[1], nativeChat);
  for (const id of ["alice", "bob", "native"]) {
    assert.deepEqual(
      nativeChat.filter((c) => c.startsWith(`${id}: `)),
      [...Array(CHATS_EACH).keys()].map((i) => `${id}: ${id}#${i}`),
      `${id}'s messages in its own order`,
    );
  }

  // The verification code of the three-member epoch, as each member saw it.
  assert.equal(states[0].epoch, states[1].epoch);
  assert.equal(states[0].verificationCode, states[1].verificationCode);
  const nativeEpoch = summary.epochs.find((e) => e.epoch === states[0].epoch);
  assert.ok(nativeEpoch, `native never saw epoch ${states[0].epoch}`);
  assert.equal(nativeEpoch.verification_code, states[0].verificationCode);
  console.log(`epoch ${states[0].epoch}: verification code ${states[0].verificationCode} on all three`);

  for (const { page } of browsers) {
    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
    await page.context().close();
  }
});
