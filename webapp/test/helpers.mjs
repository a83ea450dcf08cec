// What the web app's browser tests share: the sfu binary serving the app
// and a Chromium, started before a file's tests and stopped after, and
// helpers that drive the app's pages as a person does and read what they
// show (from the DOM only: the app has no test hooks).
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { launchBrowser } from "../../client-sdk-js/test/harness/pages.mjs";
import { startSfu } from "../../client-sdk-js/test/harness/sfu.mjs";
import { mintToken } from "../../client-sdk-js/test/harness/token.mjs";
import { until } from "../../client-sdk-js/test/harness/fixture.mjs";

/**
 * Starts the sfu (with `sfuArgs`, serving `scheme`) and Chromium (with
 * `browserArgs`; getDisplayMedia always picks the fake screen without a
 * picker) before the file's tests; returns the app's page helpers.
 */
export function useApp({ sfuArgs = [], browserArgs = [], scheme = "http" } = {}) {
  const app = { sfu: undefined, browser: undefined };
  before(async () => {
    [app.sfu, app.browser] = await Promise.all([
      startSfu({ args: sfuArgs }),
      launchBrowser({ args: ["--auto-select-desktop-capture-source=Entire screen", ...browserArgs] }),
    ]);
  });
  after(async () => {
    await app.browser?.close();
    await app.sfu?.stop();
  });
  /** The app's address. */
  app.origin = () => `${scheme}://${app.sfu.http}`;

  /** A page of its own browser context at `viewport`; console errors and exceptions land in `page.problems`. */
  app.newPage = async (viewport = { width: 1280, height: 800 }) => {
    const context = await app.browser.newContext({ viewport });
    const page = await context.newPage();
    page.problems = [];
    page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") page.problems.push(`console: ${m.text()}`);
    });
    return page;
  };

  /** What the page's own request for `/api/app-config` gets. */
  app.config = (page) => page.evaluate(() => fetch("/api/app-config").then((r) => r.json()));

  /**
   * Opens `/` and joins `room` as `name` through the join screen: the
   * fields filled (a demo token) and Join clicked, or with an invitation
   * link (`#token=`; the fields then come from the token). `beforeJoin` runs
   * once the preview is up; with `waitForPreview: false` Join is pressed
   * at once, while the camera and microphone are still opening.
   */
  app.join = async (page, room, name, { invitation = false, beforeJoin, waitForPreview = true } = {}) => {
    if (invitation) {
      const token = mintToken({ room, identity: name.toLowerCase(), name });
      await page.goto(`${app.origin()}/#token=${token}`);
    } else {
      await page.goto(`${app.origin()}/`);
      await page.fill("#room", room);
      await page.fill("#name", name);
    }
    if (waitForPreview) {
      await until(`${name}'s preview`, () => page.evaluate(() => document.querySelector("#preview").videoWidth), (w) => w > 0);
    }
    assert.equal(await page.inputValue("#room"), room);
    assert.equal(await page.inputValue("#name"), name);
    await beforeJoin?.();
    await page.click("#join-button");
    await page.waitForSelector("#call:not([hidden])", { timeout: 20_000 });
  };
  return app;
}

/** Video frames the page has shown of `name`'s camera (or screen). */
export function frames(page, name, screen = false) {
  return page.evaluate(
    ([n, s]) => {
      const video = document.querySelector(`.tile:not(.local)${s ? ".screen" : ":not(.screen)"}[data-name="${n}"] video`);
      return video?.getVideoPlaybackQuality().totalVideoFrames ?? 0;
    },
    [name, screen],
  );
}

/** Waits until `page` shows at least `n` frames of each of `names`. */
export async function seesVideoOf(page, names, { screen = false, n = 10 } = {}) {
  for (const name of names) {
    await until(`${screen ? "screen" : "video"} of ${name}`, () => frames(page, name, screen), (f) => f >= n);
  }
}

/** The verification code as the page shows it ("" while there is none). */
export const code = (page) =>
  page.evaluate(() => [...document.querySelectorAll("#code .code-group")].map((g) => g.textContent).join(" "));

/** Chat messages (not the app's own notes) as "author: text". */
export const chat = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("#chat-log .message:not(.system)")].map(
      (m) => `${m.querySelector(".message-author").textContent}: ${m.querySelector(".message-text").textContent}`,
    ),
  );

/** Waits until every page shows the same code, other than `previous`; returns it. */
export async function sameCode(pages, previous) {
  const codes = await until(
    "the same new verification code on every page",
    () => Promise.all(pages.map(code)),
    (c) => c[0] !== "" && c[0] !== previous && c.every((x) => x === c[0]),
  );
  assert.match(codes[0], /^\d{5}( \d{5}){5}$/);
  return codes[0];
}

/** Sends `text` through the chat panel (opening it if needed). */
export async function send(page, text) {
  if ((await page.getAttribute("#toggle-chat", "aria-pressed")) !== "true") await page.click("#toggle-chat");
  await page.fill("#chat-input", text);
  await page.press("#chat-input", "Enter");
}
