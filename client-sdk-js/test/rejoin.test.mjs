// When the server no longer holds a session whose connection dropped (here
// it keeps none: resume_grace 0), the resume is refused and the room joins
// afresh as a new participant, publishes its tracks again, and the call
// goes on with the new participant id: without E2EE, and with it (the
// worker's engine starts over as a new member and is added to the group).
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoProblems, decodes, framesOn, until, useFixture } from "./harness/fixture.mjs";

const FRAMES = 30;

const f = useFixture({ sfuArgs: ["--resume-grace", "0"] });

const eventsOf = (p) => p.page.evaluate(() => harness.events());
const videoOf = async (p) => (await p.page.evaluate(() => harness.remoteTracks())).find((t) => t.kind === "video");

for (const e2ee of [false, true]) {
test(`a refused resume joins the room again and republishes (e2ee: ${e2ee})`, { timeout: 120_000 }, async () => {
  const room = `rejoin-${e2ee}`;
  const alice = await f.join(room, "alice", { e2ee });
  await alice.page.evaluate(() => harness.publishFakeMedia());
  const bob = await f.join(room, "bob", { e2ee });
  await bob.page.evaluate(() => harness.publishFakeMedia());
  const first = await until("alice subscribed to bob", () => videoOf(alice), (t) => t !== undefined);
  await decodes(alice.page, first.mid, FRAMES);

  await bob.page.evaluate(() => harness.dropSignaling());
  const signaling = (ev) => ev.filter((e) => e.name === "signaling").map((e) => e.value);
  const bEvents = await until("bob rejoining", () => eventsOf(bob), (ev) => signaling(ev).includes("rejoined"));
  assert.deepEqual(signaling(bEvents), ["reconnecting", "rejoined"]);
  const newId = await bob.page.evaluate(() => harness.participantId());
  assert.notEqual(newId, bob.participantId);

  // Alice saw the old bob leave and the new one join, and decodes the new bob's video.
  const aEvents = await until(
    "alice seeing the new bob",
    () => eventsOf(alice),
    (ev) => ev.some((e) => e.name === "participantJoined" && e.participantId === newId),
  );
  assert.deepEqual(
    aEvents.filter((e) => e.name === "participantLeft").map((e) => [e.participantId, e.reason]),
    [[bob.participantId, "disconnected"]],
  );
  const again = await until("alice subscribed to the new bob", () => videoOf(alice), (t) => t?.participantId === newId);
  await decodes(alice.page, again.mid, FRAMES, await framesOn(alice.page, again.mid));
  // And bob decodes alice's video on his new subscriber transport.
  const bVideo = await until("bob subscribed to alice again", () => videoOf(bob), (t) => t !== undefined);
  assert.equal(bVideo.participantId, alice.participantId);
  await decodes(bob.page, bVideo.mid, FRAMES);

  if (e2ee) {
    // The new bob is in alice's group (the old one's leaf removed): one code, two members.
    const codes = await until(
      "one group again",
      () => Promise.all([alice, bob].map((p) => p.page.evaluate(() => harness.e2ee()))),
      ([a, b]) => a.verificationCode === b.verificationCode && a.roster.length === 2 && b.roster.length === 2,
    );
    assert.deepEqual(codes[0].roster, ["alice", "bob"]);
  }

  for (const p of [bob, alice]) await p.page.evaluate(() => harness.leave());
  for (const p of [alice, bob]) {
    await assertNoProblems(p.page);
    await p.page.context().close();
  }
});
}
