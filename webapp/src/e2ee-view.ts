/**
 * What the call shows about end-to-end encryption: the status, the room's
 * verification code (in groups, for reading aloud) and a warning when the
 * encrypted group and the server's participant list disagree.
 *
 * @module
 */

import { byId, h, icon } from "./dom.js";

/** How long the "changed" mark stays after the code changes. */
const CHANGED_MS = 6_000;

/** The status line, the code and the mismatch warning. */
export class E2eeView {
  readonly #status = byId("e2ee-status");
  readonly #code = byId("code");
  readonly #box = byId("code-box");
  readonly #changed = byId("code-changed");
  readonly #mismatch = byId("mismatch");
  #current: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** Back to "setting up" (a new call). */
  reset(): void {
    this.#current = undefined;
    this.#code.replaceChildren(h("span", { class: "code-pending" }, "waiting for the group key…"));
    this.#box.dataset.changed = "false";
    this.#changed.hidden = true;
    this.#mismatch.hidden = true;
    this.setStatus("pending", 0);
  }

  /**
   * `pending`: no key yet; `slow`: still no key after a while; `ok`:
   * encrypted among `members`; `problem`: frames fail to decrypt.
   */
  setStatus(state: "pending" | "slow" | "ok" | "problem", members: number): void {
    this.#status.dataset.state = state;
    const text = {
      pending: "Setting up end-to-end encryption…",
      slow: "Still setting up end-to-end encryption: nothing is sent until it is ready. If this lasts, leave and join again.",
      ok: `End-to-end encrypted · ${members} ${members === 1 ? "member holds" : "members hold"} the keys`,
      problem: "End-to-end encrypted · some media cannot be decrypted",
    }[state];
    const warn = state === "problem" || state === "slow";
    this.#status.replaceChildren(icon(warn ? "warning" : "lock"), h("span", { class: "e2ee-text" }, text));
  }

  /** Shows a new code; returns whether it replaced an earlier one. */
  setCode(code: string): boolean {
    const changed = this.#current !== undefined && this.#current !== code;
    this.#current = code;
    const groups = code.split(/\s+/).filter((g) => g !== "");
    // Spaces between the groups keep the text readable when copied.
    this.#code.replaceChildren(...groups.flatMap((g, i) => [...(i > 0 ? [" "] : []), h("span", { class: "code-group" }, g)]));
    this.#code.setAttribute("aria-label", `Verification code: ${groups.map((g) => g.split("").join(" ")).join(", ")}`);
    if (changed) {
      this.#box.dataset.changed = "true";
      this.#changed.hidden = false;
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => {
        this.#box.dataset.changed = "false";
        this.#changed.hidden = true;
      }, CHANGED_MS);
    }
    return changed;
  }

  /** The code as shown (groups separated by one space), if any. */
  get code(): string | undefined {
    return this.#current;
  }

  /**
   * Warns that the group holds keys for someone the server does not list
   * (`mlsOnly`: a possible eavesdropper) or lists someone without keys.
   */
  showMismatch(mlsOnly: string[], signalingOnly: string[]): void {
    const parts: string[] = [];
    if (mlsOnly.length > 0) parts.push(`holds the keys but is not shown as a participant: ${mlsOnly.join(", ")}`);
    if (signalingOnly.length > 0) parts.push(`is shown but does not hold the keys: ${signalingOnly.join(", ")}`);
    this.#mismatch.replaceChildren(
      icon("warning"),
      h(
        "p",
        {},
        h("strong", {}, "Warning: the encrypted group and the participant list disagree. "),
        `Someone ${parts.join("; someone ")}. Someone may be listening who is not shown. Compare the verification code aloud with everyone; if it differs, leave the call.`,
      ),
    );
    this.#mismatch.hidden = false;
  }

  hideMismatch(): void {
    this.#mismatch.hidden = true;
  }
}
