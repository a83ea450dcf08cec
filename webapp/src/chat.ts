/**
 * The chat panel: the room's end-to-end encrypted messages, in the order
 * every member sees them, and the form that sends one.
 *
 * @module
 */

import { byId, h } from "./dom.js";

/** The chat log and its form. */
export class ChatPanel {
  readonly #log = byId<HTMLOListElement>("chat-log");
  readonly #form = byId<HTMLFormElement>("chat-form");
  readonly #input = byId<HTMLInputElement>("chat-input");
  /** Sends a message; throws if it cannot. */
  send: (text: string) => void = () => {};

  constructor() {
    this.#form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this.#input.value.trim();
      if (text === "") return;
      try {
        this.send(text);
        this.#input.value = "";
      } catch {
        this.system("The message could not be sent: encryption is not ready yet. Try again in a moment.");
      }
    });
  }

  /** Appends a message from `author` (`own`: this member). */
  add(author: string, text: string, own: boolean): void {
    const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    this.#append(
      h(
        "li",
        { class: own ? "message own" : "message" },
        h("span", { class: "message-meta" }, h("span", { class: "message-author" }, own ? "You" : author), " ", h("time", {}, time)),
        h("p", { class: "message-text" }, text),
      ),
    );
  }

  /** A line from the app itself (joins, leaves, code changes). */
  system(text: string): void {
    this.#append(h("li", { class: "message system" }, text));
  }

  focus(): void {
    this.#input.focus();
  }

  clear(): void {
    this.#log.replaceChildren();
    this.#input.value = "";
  }

  #append(item: HTMLElement): void {
    const atEnd = this.#log.scrollTop + this.#log.clientHeight >= this.#log.scrollHeight - 8;
    this.#log.append(item);
    if (atEnd) this.#log.scrollTop = this.#log.scrollHeight;
  }
}
