// Two Chromium pages join one room with end-to-end encryption (the
// default): MLS and SFrame from the project's Rust code, compiled to wasm,
// in one worker per page. Each publishes the fake camera (VP8) and
// microphone (Opus) and decodes the other's video and receives its audio
// through the SFU; both reach the same epoch and verification code; chat
// arrives in one order on both; no frame fails to decrypt after the join.
// Then: a marker the pages append to every frame before encryption never
// shows up in the SFU's memory (scanned every second of the call, where the
// SFU holds each datagram's RTP after removing SRTP) nor in any signaling
// message the pages send, while a control call without E2EE leaves it in
// the SFU's memory.
//
// Everything is on loopback; every wait is bounded by frame or packet
// counts and a deadline that only turns a hang into a failure.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { assertNoProblems, failureTotal, until, useFixture } from "./harness/fixture.mjs";
import { scanMemory } from "./harness/memscan.mjs";
import { mintToken } from "./harness/token.mjs";

/** Video frames each page must decode from the other, and audio packets it must receive. */
const FRAMES = 60;
const AUDIO_PACKETS = 100;
const CHATS = 5;

const f = useFixture();

async function joinE2ee(room, identity) {
  const page = await f.page();
  const token = mintToken({ room, identity });
  const joined = await page.evaluate(([u, t]) => harness.join(u, t), [f.sfu.wsUrl, token]);
  return { page, identity, ...joined };
}

const fmt = (c) => (c.frames === 0 ? "n/a" : `${((c.ms / c.frames) * 1000).toFixed(1)} us/frame over ${c.frames}`);

test("two browsers in an E2EE room decode each other, agree on the code and order chat", { timeout: 120_000 }, async () => {
  const alice = await joinE2ee("e2ee", "alice");
  await alice.page.evaluate(() => harness.publishFakeMedia());
  const bob = await joinE2ee("e2ee", "bob");
  await bob.page.evaluate(() => harness.publishFakeMedia());

  // Both in the same epoch, with the same code and both members.
  const states = await Promise.all(
    [alice, bob].map((p) =>
      until(`${p.identity} in the two-member group`, () => p.page.evaluate(() => harness.e2ee()), (s) => s.roster.length === 2),
    ),
  );
  const [a, b] = await Promise.all([alice, bob].map((p) => p.page.evaluate(() => harness.e2ee())));
  assert.equal(a.epoch, b.epoch, JSON.stringify(states));
  assert.equal(a.verificationCode, b.verificationCode);
  assert.ok(a.verificationCode.length > 0);
  assert.deepEqual(a.roster, ["alice", "bob"]);
  assert.deepEqual(b.roster, ["alice", "bob"]);

  // Each page decodes the other's video and receives its audio.
  const enough = (streams) =>
    streams.some((s) => s.kind === "video" && s.framesDecoded >= FRAMES) &&
    streams.some((s) => s.kind === "audio" && s.packetsReceived >= AUDIO_PACKETS);
  const inbound = await Promise.all(
    [alice, bob].map((p) => until(`${p.identity} decoding`, () => p.page.evaluate(() => harness.inbound()), enough, 60_000)),
  );
  for (const streams of inbound) {
    assert.equal(streams.find((s) => s.kind === "video" && s.framesDecoded >= FRAMES).codec, "video/VP8");
  }

  // From here on (both in the group and decoding) no frame may fail.
  const failuresOf = async (p) => {
    const s = await p.page.evaluate(() => harness.e2ee());
    return failureTotal(s.decryptFailures);
  };
  const baseline = await Promise.all([alice, bob].map(failuresOf));

  // Chat: each sends, both see one order.
  for (let i = 0; i < CHATS; i++) {
    await alice.page.evaluate((t) => harness.sendChat(t), `a${i}`);
    await bob.page.evaluate((t) => harness.sendChat(t), `b${i}`);
  }
  const chats = await Promise.all(
    [alice, bob].map((p) => until(`${p.identity} chat`, () => p.page.evaluate(() => harness.chats()), (c) => c.length === 2 * CHATS)),
  );
  assert.deepEqual(chats[0], chats[1]);
  assert.deepEqual(chats[0].filter((c) => c.startsWith("alice:")), [...Array(CHATS).keys()].map((i) => `alice: a${i}`));

  // Another FRAMES decoded on each side, without a single failure since the baseline.
  await Promise.all(
    [alice, bob].map(async (p, i) => {
      const video = (await p.page.evaluate(() => harness.inbound())).find((s) => s.kind === "video");
      await until(`${p.identity} decoding on`, () => p.page.evaluate(() => harness.inbound()),
        (streams) => streams.some((s) => s.kind === "video" && s.framesDecoded >= video.framesDecoded + FRAMES), 60_000);
      return i;
    }),
  );
  for (const [i, p] of [alice, bob].entries()) {
    const s = await p.page.evaluate(() => harness.e2ee());
    assert.equal(await failuresOf(p), baseline[i], `${p.identity}: ${JSON.stringify(s.decryptFailures)}`);
    console.log(`${p.identity}: failures before the group formed ${baseline[i]} (${JSON.stringify(s.decryptFailures)})`);
    const streams = await p.page.evaluate(() => harness.inbound());
    const video = streams.find((x) => x.kind === "video");
    const firstFrameMs = await p.page.evaluate(() => harness.firstFrameMs());
    console.log(
      `${p.identity}: epoch ${s.epoch}, code ${s.verificationCode}, video frames decoded ${video.framesDecoded} ` +
        `(keyframes ${video.keyFramesDecoded}), first remote frame ${firstFrameMs?.toFixed(0)} ms after connect(); ` +
        `encrypt video ${fmt(s.stats.encrypt.video)}, audio ${fmt(s.stats.encrypt.audio)}; ` +
        `decrypt video ${fmt(s.stats.decrypt.video)}, audio ${fmt(s.stats.decrypt.audio)}; ` +
        `dropped before a key ${s.stats.droppedNoKey}`,
    );
  }

  for (const { page } of [alice, bob]) {
    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
    await page.context().close();
  }
});

/** The forms `marker` could take in a JSON text: raw, hex, and base64 at each byte alignment. */
function textForms(marker) {
  const forms = [marker.toString("latin1"), marker.toString("hex"), marker.toString("hex").toUpperCase()];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), marker]).toString("base64");
    // Drop the characters that mix in the padding or the bytes around it.
    forms.push(b64.slice(Math.ceil((shift * 4) / 3) + 1, -4));
  }
  return forms;
}

/**
 * Runs a two-browser call in `room` whose pages append `marker` to every
 * outgoing frame (before encryption, with E2EE), until each decoded
 * FRAMES of the other's video. Returns how often the SFU's memory held it
 * (summed over a scan each second of the call) and how many of the
 * signaling messages the pages sent held it in any form.
 */
async function callWithMarker(room, e2ee, marker) {
  const pages = [];
  const sent = [];
  const found = { count: 0, scanned: 0, scans: 0 };
  const scan = () => {
    const r = scanMemory(f.sfu.pid, Buffer.from(marker));
    found.count += r.count;
    found.scanned = Math.max(found.scanned, r.scanned);
    found.scans++;
  };
  for (const identity of ["carol", "dave"]) {
    const page = await f.page();
    page.on("websocket", (ws) => ws.on("framesent", (frame) => sent.push(String(frame.payload))));
    const token = mintToken({ room, identity });
    const options = { e2ee, testHooks: { frameMarker: [...marker] } };
    await page.evaluate(([u, t, o]) => harness.join(u, t, o), [f.sfu.wsUrl, token, options]);
    await page.evaluate(() => harness.publishFakeMedia());
    pages.push(page);
  }
  const timer = setInterval(scan, 1000);
  try {
    await Promise.all(
      pages.map((p) =>
        until("decoding with the marker", () => p.evaluate(() => harness.inbound()), (streams) =>
          streams.some((s) => s.kind === "video" && s.framesDecoded >= FRAMES) &&
          streams.some((s) => s.kind === "audio" && s.packetsReceived >= AUDIO_PACKETS), 60_000),
      ),
    );
  } finally {
    clearInterval(timer);
  }
  scan();
  const forms = textForms(Buffer.from(marker));
  found.signaling = sent.filter((m) => forms.some((form) => m.includes(form))).length;
  found.messages = sent.length;
  for (const page of pages) {
    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
    await page.context().close();
  }
  return found;
}

test("nothing in the clear: the SFU never holds a frame marker with E2EE, and does without", { timeout: 180_000 }, async () => {
  const encrypted = await callWithMarker("marker-e2ee", true, randomBytes(16));
  const control = await callWithMarker("marker-clear", false, randomBytes(16));
  console.log(
    `marker occurrences in sfu memory: E2EE ${encrypted.count} in ${encrypted.scans} scans (up to ${(encrypted.scanned / 2 ** 20).toFixed(0)} MiB each), ` +
      `E2EE off ${control.count} in ${control.scans} scans (up to ${(control.scanned / 2 ** 20).toFixed(0)} MiB); ` +
      `signaling messages holding it: E2EE ${encrypted.signaling} of ${encrypted.messages}, E2EE off ${control.signaling} of ${control.messages}`,
  );
  assert.ok(control.count > 0, "the control run must find the marker, or the scan proves nothing");
  assert.equal(encrypted.count, 0);
  assert.ok(encrypted.messages > 0, "the pages' signaling was seen");
  assert.equal(encrypted.signaling, 0);
});
