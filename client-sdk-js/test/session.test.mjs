// The session around the media: a dropped signaling connection is resumed
// with media flowing on, and a subscriber m-line the server reuses for a
// newcomer carries the newcomer's track, as `subscribed{mid}` says (the
// SDP's msid on such an m-line may still name the participant who left).
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoProblems, decodes, framesOn, until, useFixture } from "./harness/fixture.mjs";

const FRAMES = 30;

const f = useFixture();

const eventsOf = (p) => p.page.evaluate(() => harness.events());

// Each without E2EE and with it.
for (const e2ee of [false, true]) {
test(`a dropped signaling connection resumes; the call goes on (e2ee: ${e2ee})`, { timeout: 90_000 }, async () => {
  const alice = await f.join(`resume-${e2ee}`, "alice", { e2ee });
  await alice.page.evaluate(() => harness.publishFakeMedia());
  const bob = await f.join(`resume-${e2ee}`, "bob", { e2ee });
  await bob.page.evaluate(() => harness.publishFakeMedia());
  const [bVideo] = (await bob.page.evaluate(() => harness.remoteTracks())).filter((t) => t.kind === "video");
  await decodes(bob.page, bVideo.mid, FRAMES);

  await bob.page.evaluate(() => harness.dropSignaling());
  const signaling = (ev) => ev.filter((e) => e.name === "signaling").map((e) => e.value);
  const bEvents = await until("bob resuming", () => eventsOf(bob), (ev) => signaling(ev).includes("resumed"));
  assert.deepEqual(signaling(bEvents), ["reconnecting", "resumed"]);
  // Media kept flowing, and still does.
  await decodes(bob.page, bVideo.mid, FRAMES, await framesOn(bob.page, bVideo.mid));
  // Alice never saw bob go.
  assert.deepEqual((await eventsOf(alice)).filter((e) => e.name === "participantLeft"), []);

  // The resumed session still carries requests and leaves cleanly.
  await bob.page.evaluate(() => harness.leave());
  const aEvents = await until("alice seeing bob leave", () => eventsOf(alice), (ev) => ev.some((e) => e.name === "participantLeft"));
  assert.deepEqual(
    aEvents.filter((e) => e.name === "participantLeft").map((e) => [e.participantId, e.reason]),
    [[bob.participantId, "left"]],
  );
  await alice.page.evaluate(() => harness.leave());
  for (const p of [alice, bob]) {
    await assertNoProblems(p.page);
    await p.page.context().close();
  }
});

test(`a reused subscriber m-line carries the newcomer's track (e2ee: ${e2ee})`, { timeout: 120_000 }, async () => {
  const alice = await f.join(`reuse-${e2ee}`, "alice", { e2ee });
  await alice.page.evaluate(() => harness.publishFakeMedia());

  const bob = await f.join(`reuse-${e2ee}`, "bob", { e2ee });
  const bTracks = await bob.page.evaluate(() => harness.publishFakeMedia());
  const bobVideo = await remoteVideo(alice, "bob");
  assert.equal(bobVideo.participantId, bob.participantId);
  assert.ok(bTracks.some((t) => t.trackId === bobVideo.trackId));
  await decodes(alice.page, bobVideo.mid, FRAMES);
  await bob.page.evaluate(() => harness.leave());
  await until("alice unsubscribed from bob", () => alice.page.evaluate(() => harness.remoteTracks()), (t) => t.length === 0);

  const carol = await f.join(`reuse-${e2ee}`, "carol", { e2ee });
  const cTracks = await carol.page.evaluate(() => harness.publishFakeMedia());
  const carolVideo = await remoteVideo(alice, "carol");
  assert.equal(carolVideo.participantId, carol.participantId);
  assert.ok(cTracks.some((t) => t.trackId === carolVideo.trackId));
  // The server reused bob's m-line for carol, and her frames decode on it.
  assert.equal(carolVideo.mid, bobVideo.mid, "the server did not reuse the m-line; this test no longer covers reuse");
  await decodes(alice.page, carolVideo.mid, FRAMES, await framesOn(alice.page, carolVideo.mid));

  const sdp = await alice.page.evaluate(() => harness.sdp());
  const msid = mlineAttribute(sdp.subscriberOffer, carolVideo.mid, "msid");
  console.log(`msid on the reused m-line ${carolVideo.mid}: ${msid} (bob ${bob.participantId}, carol ${carol.participantId})`);

  const aEvents = await eventsOf(alice);
  assert.deepEqual(
    aEvents.filter((e) => e.name.startsWith("track") && e.kind === "video" && e.name !== "trackPublished").map((e) => [e.name, e.participantId, e.mid]),
    [
      ["trackSubscribed", bob.participantId, bobVideo.mid],
      ["trackUnsubscribed", bob.participantId, bobVideo.mid],
      ["trackSubscribed", carol.participantId, bobVideo.mid],
    ],
  );
  for (const p of [carol, alice]) await p.page.evaluate(() => harness.leave());
  for (const p of [alice, bob, carol]) {
    await assertNoProblems(p.page);
    await p.page.context().close();
  }
});
}

/** Waits until `p` is subscribed to a remote video track; returns it. */
async function remoteVideo(p, whose) {
  const tracks = await until(
    `${p.identity} subscribed to ${whose}'s video`,
    () => p.page.evaluate(() => harness.remoteTracks()),
    (list) => list.some((t) => t.kind === "video"),
  );
  return tracks.find((t) => t.kind === "video");
}

/** The value of `a=<name>:` in the m-section whose mid is `mid`. */
function mlineAttribute(sdp, mid, name) {
  const sections = sdp.split(/\r\nm=/);
  const section = sections.find((s) => s.includes(`\r\na=mid:${mid}\r\n`) || s.endsWith(`\r\na=mid:${mid}`));
  return section?.split("\r\n").find((l) => l.startsWith(`a=${name}:`))?.slice(name.length + 3);
}

test("a screen share is published next to the camera, then unpublished; a muted microphone is announced", { timeout: 90_000 }, async () => {
  const alice = await f.join("screen", "alice");
  await alice.page.evaluate(() => harness.publishFakeMedia());
  const bob = await f.join("screen", "bob");
  const camera = await remoteVideo(bob, "alice");
  await decodes(bob.page, camera.mid, FRAMES);

  const screen = await alice.page.evaluate(() => harness.publishScreen());
  assert.deepEqual([screen.cid, screen.source, screen.kind, screen.codec], ["screen", "screen", "video", "VP8"]);
  const shared = await until(
    "bob subscribed to alice's screen",
    () => bob.page.evaluate(() => harness.remoteTracks()),
    (tracks) => tracks.some((t) => t.trackId === screen.trackId),
  ).then((tracks) => tracks.find((t) => t.trackId === screen.trackId));
  assert.equal(shared.participantId, alice.participantId);
  assert.notEqual(shared.mid, camera.mid);
  await decodes(bob.page, shared.mid, FRAMES);

  assert.deepEqual(await alice.page.evaluate(() => harness.unpublish("screen")), ["camera", "microphone"]);
  const bEvents = await until(
    "bob seeing the screen go",
    () => eventsOf(bob),
    (ev) => ev.some((e) => e.name === "trackUnsubscribed" && e.trackId === screen.trackId),
  );
  assert.ok(bEvents.some((e) => e.name === "trackUnpublished" && e.trackId === screen.trackId));
  // The camera goes on.
  await decodes(bob.page, camera.mid, FRAMES, await framesOn(bob.page, camera.mid));

  // Alice mutes her microphone: bob hears of it, and so does carol, who joins after.
  await alice.page.evaluate(() => harness.setTrackMuted("microphone", true));
  const mutedEvent = await until(
    "bob seeing the mute",
    () => eventsOf(bob),
    (ev) => ev.some((e) => e.name === "trackMuted"),
  ).then((ev) => ev.find((e) => e.name === "trackMuted"));
  assert.equal(mutedEvent.participantId, alice.participantId);
  assert.equal(mutedEvent.muted, true);
  const carol = await f.join("screen", "carol");
  for (const p of [bob, carol]) {
    const tracks = (await p.page.evaluate(() => harness.publishedTracks())).filter((t) => t.participantId === alice.participantId);
    assert.deepEqual(tracks.map((t) => [t.kind, t.muted]).sort(), [["audio", true], ["video", false]]);
  }
  await carol.page.evaluate(() => harness.leave());
  await carol.page.context().close();

  for (const p of [bob, alice]) await p.page.evaluate(() => harness.leave());
  for (const p of [alice, bob]) {
    await assertNoProblems(p.page);
    await p.page.context().close();
  }
});
