// Two Chromium pages join one room with end-to-end encryption (the
// default): MLS and SFrame from the project's Rust code, compiled to wasm,
// in one worker per page. Each publishes the fake camera (VP8) and
// microphone (Opus) and decodes the other's video and receives its audio
// through the SFU; both reach the same epoch and verification code; chat
// arrives in one order on both; no frame fails to decrypt after the join.
// Then: a marker the pages append to every frame before encryption never
// shows up in the SFU's memory, while a control call without E2EE leaves it
// there.
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

/**
 * Runs a two-browser call in `room` whose pages append `marker` to every
 * outgoing frame (before encryption, with E2EE), until each decoded
 * FRAMES of the other's video; returns how often the SFU's memory holds it.
 */
async function callWithMarker(room, e2ee, marker) {
  const pages = [];
  for (const identity of ["carol", "dave"]) {
    const page = await f.page();
    const token = mintToken({ room, identity });
    const options = { e2ee, testHooks: { frameMarker: [...marker] } };
    await page.evaluate(([u, t, o]) => harness.join(u, t, o), [f.sfu.wsUrl, token, options]);
    await page.evaluate(() => harness.publishFakeMedia());
    pages.push(page);
  }
  await Promise.all(
    pages.map((p) =>
      until("decoding with the marker", () => p.evaluate(() => harness.inbound()), (streams) =>
        streams.some((s) => s.kind === "video" && s.framesDecoded >= FRAMES) &&
        streams.some((s) => s.kind === "audio" && s.packetsReceived >= AUDIO_PACKETS), 60_000),
    ),
  );
  const found = scanMemory(f.sfu.pid, Buffer.from(marker));
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
    `marker occurrences in sfu memory: E2EE ${encrypted.count} (${(encrypted.scanned / 2 ** 20).toFixed(0)} MiB scanned), ` +
      `E2EE off ${control.count} (${(control.scanned / 2 ** 20).toFixed(0)} MiB)`,
  );
  assert.ok(control.count > 0, "the control run must find the marker, or the scan proves nothing");
  assert.equal(encrypted.count, 0);
});
