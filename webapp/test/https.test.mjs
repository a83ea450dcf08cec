// The app over HTTPS and WSS: the sfu binary with a self-signed
// certificate from `sfu cert --self-signed`, which the test's Chromium
// trusts by its public key (as a browser trusts a certificate its user
// installed); two pages join from the join screen and meet.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as joinPath } from "node:path";
import { after, test } from "node:test";
import { until } from "../../client-sdk-js/test/harness/fixture.mjs";
import { sfuBinary } from "../../client-sdk-js/test/harness/sfu.mjs";
import { chat, sameCode, seesVideoOf, send, useApp } from "./helpers.mjs";

const dir = mkdtempSync(joinPath(tmpdir(), "webapp-tls-"));
after(() => rmSync(dir, { recursive: true, force: true }));
execFileSync(sfuBinary(), ["cert", "--self-signed", "127.0.0.1", "localhost", "--out-dir", dir], { stdio: "ignore" });
const certificate = new X509Certificate(readFileSync(joinPath(dir, "cert.pem")));
const spki = createHash("sha256").update(certificate.publicKey.export({ type: "spki", format: "der" })).digest("base64");

const app = useApp({
  scheme: "https",
  sfuArgs: ["--tls-cert", joinPath(dir, "cert.pem"), "--tls-key", joinPath(dir, "key.pem")],
  // Trust this certificate only; any other still fails.
  browserArgs: [`--ignore-certificate-errors-spki-list=${spki}`],
});

test("over https and wss: two pages join from the join screen, see each other, chat, same code", async () => {
  const [alice, bob] = [await app.newPage(), await app.newPage()];
  await app.join(alice, "secure", "Alice");
  await app.join(bob, "secure", "Bob");
  for (const page of [alice, bob]) {
    assert.equal(await page.evaluate(() => `${location.protocol} ${window.isSecureContext}`), "https: true");
  }
  await Promise.all([seesVideoOf(alice, ["Bob"]), seesVideoOf(bob, ["Alice"])]);
  await sameCode([alice, bob]);
  await send(bob, "over TLS");
  await until("Alice reads Bob", () => chat(alice), (m) => m.includes("Bob: over TLS"));
  for (const page of [alice, bob]) assert.deepEqual(page.problems, []);
  await Promise.all([alice, bob].map((p) => p.context().close()));
});
