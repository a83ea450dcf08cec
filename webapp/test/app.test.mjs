// The meeting app as people use it: Chromium pages open `/` of the sfu
// binary (the app embedded in it, same origin), join through the join
// screen, see and hear each other, chat, compare the verification code,
// and share a screen. With WEBAPP_SCREENSHOTS=<dir> it also writes the
// screenshots of docs/img/ (scripts/screenshots.sh).
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { before, test } from "node:test";
import { mintToken } from "../../client-sdk-js/test/harness/token.mjs";
import { until } from "../../client-sdk-js/test/harness/fixture.mjs";
import { chat, code, sameCode, seesVideoOf, send, useApp } from "./helpers.mjs";

const shots = process.env.WEBAPP_SCREENSHOTS;
const app = useApp();
before(async () => {
  if (shots !== undefined) await mkdir(shots, { recursive: true });
});
const { newPage } = app;
const origin = () => app.origin();
const join = (page, room, name, { invitation = false, shot, waitForPreview } = {}) =>
  app.join(page, room, name, {
    invitation,
    waitForPreview,
    beforeJoin:
      shot === undefined
        ? undefined
        : async () => {
            await page.evaluate(() => document.activeElement?.blur());
            // The pickers are filled once the preview's devices are listed.
            await page.waitForFunction(() =>
              ["#camera-select", "#mic-select"].every((s) => document.querySelector(s)?.options[0]?.textContent),
            );
            await page.screenshot({ path: `${shots}/${shot}` });
          },
  });

/** Whether the server hands out tokens to the join screen. */
async function demoTokens() {
  const res = await fetch(`${origin()}/api/app-config`);
  return res.ok && (await res.json()).demoTokens === true;
}

test("two pages meet from the join screen, chat and compare the code; a third changes it; a screen share reaches the others", async () => {
  const t0 = Date.now();
  const step = (what) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  const room = "standup";
  // On loopback with the development key the join screen gets demo tokens.
  assert.equal(await demoTokens(), true);
  const alice = await newPage();
  const bob = await newPage();

  await join(alice, room, "Alice", shots === undefined ? {} : { shot: "join.png" });
  // Bob's microphone takes a while to open, and he presses Join as soon as
  // the form is filled: what was still opening goes into the call.
  await bob.addInitScript(() => {
    const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (constraints) => {
      if (constraints?.audio) await new Promise((r) => setTimeout(r, 1_500));
      return open(constraints);
    };
  });
  await join(bob, room, "Bob", { waitForPreview: false });
  await Promise.all([seesVideoOf(alice, ["Bob"]), seesVideoOf(bob, ["Alice"])]);
  step("Alice and Bob see each other");

  const first = await sameCode([alice, bob]);
  step(`both show ${first}`);

  await send(alice, "Hello Bob, can you read me?");
  await until("Bob reads Alice", () => chat(bob), (m) => m.includes("Alice: Hello Bob, can you read me?"));
  await send(bob, "Loud and clear");
  await until("Alice reads Bob", () => chat(alice), (m) => m.includes("Bob: Loud and clear"));
  assert.deepEqual(await chat(alice), ["You: Hello Bob, can you read me?", "Bob: Loud and clear"]);
  step("chat both ways");

  // Mute and camera off show on the other side, and come back.
  const tileState = (page, name) =>
    page.evaluate((n) => {
      const tile = document.querySelector(`.tile:not(.local):not(.screen)[data-name="${n}"]`);
      return `${tile?.dataset.mic}/${tile?.dataset.video}`;
    }, name);
  await until("Bob sees Alice unmuted", () => tileState(bob, "Alice"), (s) => s === "on/on");
  await until("Alice sees Bob unmuted", () => tileState(alice, "Bob"), (s) => s === "on/on");
  await alice.click("#toggle-mic");
  await alice.click("#toggle-cam");
  await until("Bob sees Alice muted, camera off", () => tileState(bob, "Alice"), (s) => s === "muted/off");
  assert.equal(await alice.textContent("#toggle-mic .label"), "Unmute");
  await alice.click("#toggle-mic");
  await alice.click("#toggle-cam");
  await until("Bob sees Alice back", () => tileState(bob, "Alice"), (s) => s === "on/on");
  step("mute and camera off seen by the other");

  // The third joins with an invitation link, on a phone-sized screen.
  const carol = await newPage({ width: 360, height: 740 });
  await join(carol, room, "Carol", { invitation: true });
  const second = await sameCode([alice, bob, carol], first);
  assert.notEqual(second, first);
  // The change is marked where people look.
  assert.equal(await alice.isVisible("#code-changed"), true);
  step(`all three show ${second}`);
  await Promise.all([
    seesVideoOf(alice, ["Bob", "Carol"]),
    seesVideoOf(bob, ["Alice", "Carol"]),
    seesVideoOf(carol, ["Alice", "Bob"]),
  ]);
  step("everyone sees everyone");
  // The fake microphones beep: a remote member's beep, decrypted and
  // measured in the page, outlines that member's tile at some moment.
  await until(
    "a remote speaker highlighted",
    () => alice.$$eval(".tile.speaking:not(.local)", (tiles) => tiles.map((t) => t.dataset.name)),
    (names) => names.length === 1 && ["Bob", "Carol"].includes(names[0]),
    15_000,
  );
  step("a remote speaker highlighted");

  if (shots !== undefined) {
    // No hover left on a button from the clicks above.
    for (const page of [alice, bob, carol]) await page.mouse.move(1, 1);
    await bob.click("#toggle-chat");
    await bob.mouse.move(1, 1);
    await bob.screenshot({ path: `${shots}/call.png` });
    await bob.click("#toggle-chat");
    await alice.screenshot({ path: `${shots}/chat.png` });
    await carol.screenshot({ path: `${shots}/call-360.png` });
  }

  await bob.click("#toggle-screen");
  await Promise.all([seesVideoOf(alice, ["Bob"], { screen: true }), seesVideoOf(carol, ["Bob"], { screen: true })]);
  assert.equal(await alice.textContent(`.tile.screen[data-name="Bob"] .tile-name`), "Bob's screen");
  step("Bob's screen reaches Alice and Carol");

  // Leaving: the others' grids and codes follow.
  await carol.click("#leave");
  await carol.waitForSelector("#join:not([hidden])");
  await until("Carol's tile gone", () => alice.$$(`.tile[data-name="Carol"]`), (t) => t.length === 0);
  await sameCode([alice, bob], second);
  step("Carol left");

  for (const page of [alice, bob, carol]) assert.deepEqual(page.problems, []);
  await Promise.all([alice, bob, carol].map((p) => p.context().close()));
});

test("errors a person can act on: a refused token, a blocked camera (joining without it), no token source", async () => {
  const t0 = Date.now();
  const step = (what) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  // An expired invitation, then one that is no token at all.
  const page = await newPage();
  const expired = mintToken({ room: "errors", identity: "eve", name: "Eve", ttlSeconds: -60 });
  for (const token of [expired, "not-a-token"]) {
    await page.goto(`${origin()}/#token=${token}`);
    await page.click("#join-button");
    await page.waitForSelector("#join-error:not([hidden])");
    assert.equal(await page.textContent("#join-error .error-title"), "The server refused the access token");
    assert.equal(await page.isHidden("#call"), true);
    assert.equal(await page.isEnabled("#join-button"), true, "free to try again");
    step(`token ${token.slice(0, 8)} refused`);
  }

  // Camera and microphone refused by the browser: said so, and the call works without them.
  const blocked = await newPage();
  await blocked.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("refused", "NotAllowedError"));
  });
  const token = mintToken({ room: "errors", identity: "dora", name: "Dora" });
  await blocked.goto(`${origin()}/#token=${token}`);
  await blocked.waitForSelector("#media-error:not([hidden])");
  assert.match(await blocked.textContent("#media-error .error-title"), /^Access to the (camera|microphone) is blocked$/);
  assert.equal(await blocked.isVisible("#media-retry"), true);
  await blocked.click("#join-button");
  await blocked.waitForSelector("#call:not([hidden])");
  assert.equal(await blocked.getAttribute(".tile.local", "data-video"), "off");
  assert.equal(await blocked.textContent("#toggle-mic .label"), "Unmute");
  step("blocked camera said, joined without");

  // Without an invitation, the join screen says at once whether this server can let people in.
  const plain = await newPage();
  await plain.goto(`${origin()}/`);
  if (await demoTokens()) {
    assert.equal(await plain.isHidden("#join-notice"), true);
  } else {
    await plain.waitForSelector("#join-notice:not([hidden])");
    assert.match(await plain.textContent("#join-notice"), /^An invitation link is needed/);
  }
  for (const p of [page, blocked, plain]) assert.deepEqual(p.problems, []);
  await Promise.all([page, blocked, plain].map((p) => p.context().close()));
});

/**
 * Every visible control of the page and what a screen reader would call it
 * (its label, aria-label/-labelledby, or text); unnamed ones have "".
 */
const controlNames = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("button, input, select, textarea, [tabindex]")]
      .filter((el) => el.getClientRects().length > 0)
      .map((el) => {
        const by = el.getAttribute("aria-labelledby");
        const name =
          el.getAttribute("aria-label") ??
          (by ? by.split(" ").map((id) => document.getElementById(id)?.textContent ?? "").join(" ") : null) ??
          (el.labels?.[0]?.textContent || el.textContent || el.getAttribute("title") || "");
        return { id: el.id || el.tagName, name: name.trim() };
      }),
  );

/** Whether the page scrolls sideways (its layout is wider than the window). */
const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

test("keyboard only: join, mute and chat without a mouse; every control is named; 360 px and 1920x1080 fit", async () => {
  const page = await newPage({ width: 360, height: 740 });
  await page.goto(`${origin()}/`);
  await until("the preview", () => page.evaluate(() => document.querySelector("#preview").videoWidth), (w) => w > 0);
  for (const c of await controlNames(page)) assert.notEqual(c.name, "", `join screen: ${c.id} has no accessible name`);
  assert.equal(await overflows(page), false, "join screen wider than 360 px");

  // Tab to the room field, type, Tab to the name, type, Enter submits.
  for (let i = 0; i < 20 && (await page.evaluate(() => document.activeElement?.id)) !== "room"; i++) await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "room", "the room field is reachable by Tab");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("keyboard");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "name", "Tab goes from room to name");
  await page.keyboard.type("Kay");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#call:not([hidden])", { timeout: 20_000 });
  for (const c of await controlNames(page)) assert.notEqual(c.name, "", `call: ${c.id} has no accessible name`);
  assert.equal(await overflows(page), false, "call wider than 360 px");

  // Tab to Mute and press Space; Tab to Chat, Enter, type, Enter sends.
  const focusOn = async (id) => {
    for (let i = 0; i < 30 && (await page.evaluate(() => document.activeElement?.id)) !== id; i++) await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.id), id, `${id} is reachable by Tab`);
  };
  await focusOn("toggle-mic");
  await page.keyboard.press("Space");
  await until("muted by keyboard", () => page.textContent("#toggle-mic .label"), (t) => t === "Unmute");
  await focusOn("toggle-chat");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#chat-input:visible");
  await page.focus("#chat-input");
  await page.keyboard.type("typed, not clicked");
  await page.keyboard.press("Enter");
  await until("the message in the chat", () => page.textContent("#chat-log"), (t) => t?.includes("typed, not clicked"));
  await page.keyboard.press("Escape");

  await page.setViewportSize({ width: 1920, height: 1080 });
  assert.equal(await overflows(page), false, "call wider than 1920 px");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});
