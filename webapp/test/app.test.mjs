// The meeting app as people use it: Chromium pages open `/` of the sfu
// binary (the app embedded in it, same origin), join through the join
// screen, see and hear each other, chat, compare the verification code,
// and share a screen. With WEBAPP_SCREENSHOTS=<dir> it also writes the
// screenshots of docs/img/ (scripts/screenshots.sh).
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { after, before, test } from "node:test";
import { launchBrowser } from "../../client-sdk-js/test/harness/pages.mjs";
import { startSfu } from "../../client-sdk-js/test/harness/sfu.mjs";
import { mintToken } from "../../client-sdk-js/test/harness/token.mjs";
import { until } from "../../client-sdk-js/test/harness/fixture.mjs";

const shots = process.env.WEBAPP_SCREENSHOTS;
let sfu;
let browser;

before(async () => {
  [sfu, browser] = await Promise.all([
    startSfu(),
    // getDisplayMedia picks the (fake) screen without a picker.
    launchBrowser({ args: ["--auto-select-desktop-capture-source=Entire screen"] }),
  ]);
  if (shots !== undefined) await mkdir(shots, { recursive: true });
});
after(async () => {
  await browser?.close();
  await sfu?.stop();
});

const origin = () => `http://${sfu.http}`;

/** A page of its own browser context at `viewport`; console errors and exceptions land in `page.problems`. */
async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(`console: ${m.text()}`);
  });
  return page;
}

/** Whether the server hands out tokens to the join screen (else the test uses invitation links). */
async function demoTokens() {
  const res = await fetch(`${origin()}/api/app-config`);
  return res.ok && (await res.json()).demoTokens === true;
}

/**
 * Opens `/` and joins `room` as `name` through the join screen: the fields
 * filled (a demo token) and Join clicked, or with an invitation link
 * (`#token=`; the fields then come from the token).
 */
async function join(page, room, name, { invitation = false, shot } = {}) {
  if (invitation) {
    const token = mintToken({ room, identity: name.toLowerCase(), name });
    await page.goto(`${origin()}/#token=${token}`);
  } else {
    await page.goto(`${origin()}/`);
    await page.fill("#room", room);
    await page.fill("#name", name);
  }
  // The preview is up before joining (and in the screenshot).
  await until(`${name}'s preview`, () => page.evaluate(() => document.querySelector("#preview").videoWidth), (w) => w > 0);
  assert.equal(await page.inputValue("#room"), room);
  assert.equal(await page.inputValue("#name"), name);
  if (shot !== undefined) {
    await page.evaluate(() => document.activeElement?.blur());
    await page.screenshot({ path: `${shots}/${shot}` });
  }
  await page.click("#join-button");
  await page.waitForSelector("#call:not([hidden])", { timeout: 20_000 });
}

/** Video frames the page has shown of `name`'s camera (or screen). */
function frames(page, name, screen = false) {
  return page.evaluate(
    ([n, s]) => {
      const video = document.querySelector(`.tile:not(.local)${s ? ".screen" : ":not(.screen)"}[data-name="${n}"] video`);
      return video?.getVideoPlaybackQuality().totalVideoFrames ?? 0;
    },
    [name, screen],
  );
}

/** Waits until `page` shows at least `n` frames of each of `names`. */
async function seesVideoOf(page, names, { screen = false, n = 10 } = {}) {
  for (const name of names) {
    await until(`${screen ? "screen" : "video"} of ${name}`, () => frames(page, name, screen), (f) => f >= n);
  }
}

/** The verification code as the page shows it ("" while there is none). */
const code = (page) => page.evaluate(() => [...document.querySelectorAll("#code .code-group")].map((g) => g.textContent).join(" "));

/** Chat messages (not the app's own notes) as "author: text". */
const chat = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("#chat-log .message:not(.system)")].map(
      (m) => `${m.querySelector(".message-author").textContent}: ${m.querySelector(".message-text").textContent}`,
    ),
  );

/** Waits until every page shows the same code, other than `previous`; returns it. */
async function sameCode(pages, previous) {
  const codes = await until(
    "the same new verification code on every page",
    () => Promise.all(pages.map(code)),
    (c) => c[0] !== "" && c[0] !== previous && c.every((x) => x === c[0]),
  );
  assert.match(codes[0], /^\d{5}( \d{5}){5}$/);
  return codes[0];
}

async function send(page, text) {
  if ((await page.getAttribute("#toggle-chat", "aria-pressed")) !== "true") await page.click("#toggle-chat");
  await page.fill("#chat-input", text);
  await page.press("#chat-input", "Enter");
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
  await join(bob, room, "Bob");
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
    await bob.click("#toggle-chat");
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
