/**
 * The video grid: one tile per member (its camera, or its initial while the
 * camera is off) and one per screen share, with the name, the microphone
 * state and the active speaker's highlight. The sheet lays the tiles out
 * by their count (`data-count`).
 *
 * @module
 */

import { h, icon } from "./dom.js";

/** One tile of the grid. */
export class Tile {
  readonly el: HTMLElement;
  readonly video: HTMLVideoElement;
  readonly #name: HTMLElement;
  readonly #mic: HTMLElement;
  readonly #avatar: HTMLElement;
  #label = "";

  constructor(
    readonly key: string,
    options: { name: string; identity: string; local: boolean; screen: boolean },
  ) {
    this.video = h("video", { autoplay: true, playsinline: true, muted: true });
    // The attribute alone does not mute a video that srcObject fills.
    this.video.muted = true;
    this.#avatar = h("div", { class: "avatar", "aria-hidden": "true" }, initial(options.name));
    this.#mic = h("span", { class: "tile-mic", hidden: true }, icon("micOff"));
    this.#name = h("span", { class: "tile-name" });
    this.el = h(
      "figure",
      {
        class: `tile${options.local ? " local" : ""}${options.screen ? " screen" : ""}`,
        "data-identity": options.identity,
        "data-name": options.name,
        "data-key": key,
        "data-video": "off",
      },
      this.#avatar,
      this.video,
      h("figcaption", { class: "tile-caption" }, this.#mic, this.#name),
    );
    this.setName(options.name, options.local, options.screen);
  }

  setName(name: string, local: boolean, screen: boolean): void {
    const who = local ? `${name} (you)` : name;
    this.#label = screen ? `${local ? "Your" : `${name}'s`} screen` : who;
    this.#name.textContent = this.#label;
    this.#avatar.textContent = initial(name);
    this.#describe();
  }

  /** Shows `track` (or the avatar when undefined or off). */
  setVideo(track: MediaStreamTrack | undefined, on = true): void {
    const current = this.video.srcObject instanceof MediaStream ? this.video.srcObject.getVideoTracks()[0] : undefined;
    if (track !== current) this.video.srcObject = track === undefined ? null : new MediaStream([track]);
    this.el.dataset.video = track !== undefined && on ? "on" : "off";
    this.#describe();
  }

  /** Whether this member's microphone is muted (or absent). */
  setMicMuted(muted: boolean): void {
    this.#mic.hidden = !muted;
    this.el.dataset.mic = muted ? "muted" : "on";
    this.#describe();
  }

  setSpeaking(speaking: boolean): void {
    this.el.classList.toggle("speaking", speaking);
  }

  #describe(): void {
    const parts = [this.#label];
    if (this.el.dataset.video !== "on") parts.push("camera off");
    if (this.el.dataset.mic === "muted") parts.push("muted");
    this.el.setAttribute("aria-label", parts.join(", "));
  }
}

/** The grid of tiles, by key. */
export class Grid {
  readonly #tiles = new Map<string, Tile>();
  #speaker: string | undefined;

  constructor(readonly el: HTMLElement) {}

  get(key: string): Tile | undefined {
    return this.#tiles.get(key);
  }

  /** The tile for `key`, added (after the others; screens first) if new. */
  ensure(key: string, options: ConstructorParameters<typeof Tile>[1]): Tile {
    let tile = this.#tiles.get(key);
    if (tile === undefined) {
      tile = new Tile(key, options);
      this.#tiles.set(key, tile);
      if (options.screen) this.el.prepend(tile.el);
      else this.el.append(tile.el);
      tile.setSpeaking(this.#speaker === key);
      this.#layout();
    }
    return tile;
  }

  remove(key: string): void {
    const tile = this.#tiles.get(key);
    if (tile === undefined) return;
    tile.video.srcObject = null;
    tile.el.remove();
    this.#tiles.delete(key);
    this.#layout();
  }

  /** Highlights the tile of `key` (undefined: none). */
  setSpeaker(key: string | undefined): void {
    this.#speaker = key;
    for (const [k, tile] of this.#tiles) tile.setSpeaking(k === key);
  }

  clear(): void {
    for (const key of [...this.#tiles.keys()]) this.remove(key);
  }

  #layout(): void {
    const n = this.#tiles.size;
    this.el.dataset.count = String(Math.min(n, 10));
    this.el.classList.toggle("has-screen", [...this.#tiles.values()].some((t) => t.el.classList.contains("screen")));
  }
}

function initial(name: string): string {
  return (name.trim()[0] ?? "?").toUpperCase();
}
