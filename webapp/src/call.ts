/**
 * The call screen: publishes the camera and microphone, shows every
 * member's media in the grid, and wires the controls, the chat, the
 * participant list and the encryption status to the room.
 *
 * @module
 */

import type { RemoteTrack, Room, TrackInfo } from "../../client-sdk-js/src/index.js";
import { ChatPanel } from "./chat.js";
import { byId, h, setIcon } from "./dom.js";
import { E2eeView } from "./e2ee-view.js";
import { Grid } from "./grid.js";
import { AudioLevels } from "./levels.js";
import { type Device, LocalMedia } from "./media.js";
import { UserError, closedMessage, publishError } from "./messages.js";
import { isScreen } from "./tracks.js";
import { type Person, renderPeople } from "./people.js";

/** What the call starts with (from the join screen). */
export interface CallMedia {
  camera: MediaStreamTrack | undefined;
  microphone: MediaStreamTrack | undefined;
  cameraOn: boolean;
  microphoneOn: boolean;
  deviceId: Record<Device, string>;
}

const LOCAL = "local";
const SCREEN_CID = "screen";
/** After this long without the group's keys the status says something is wrong. */
const KEYS_EXPECTED_MS = 15_000;

/** One call, from join to leave. */
export class CallScreen {
  readonly #el = byId("call");
  readonly #grid = new Grid(byId("grid"));
  readonly #chat = new ChatPanel();
  readonly #e2ee = new E2eeView();
  readonly #banner = byId("banner");
  readonly #panel = byId("panel");
  readonly #buttons = {
    mic: byId<HTMLButtonElement>("toggle-mic"),
    cam: byId<HTMLButtonElement>("toggle-cam"),
    screen: byId<HTMLButtonElement>("toggle-screen"),
    chat: byId<HTMLButtonElement>("toggle-chat"),
    people: byId<HTMLButtonElement>("toggle-people"),
    leave: byId<HTMLButtonElement>("leave"),
  };
  readonly #media = new LocalMedia();
  /** Whether each device is switched on (sending). */
  readonly #on: Record<Device, boolean>;
  #screen: MediaStreamTrack | undefined;
  readonly #muted = new Map<string, boolean>();
  readonly #audio = new Map<string, HTMLAudioElement>();
  readonly #levels: AudioLevels;
  #roster = new Set<string>();
  #unread = 0;
  #ended = false;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #controls = new AbortController();

  constructor(
    private readonly room: Room,
    media: CallMedia,
    private readonly myName: string,
    audio: AudioContext,
    /** Called once when the call is over, with why if it was not the person's choice. */
    private readonly onEnd: (notice: UserError | undefined) => void,
  ) {
    this.#media.camera = media.camera;
    this.#media.microphone = media.microphone;
    Object.assign(this.#media.deviceId, media.deviceId);
    this.#on = { camera: media.cameraOn, microphone: media.microphoneOn };
    this.#levels = new AudioLevels(audio);
    this.#levels.onSpeaker = (key) => this.#grid.setSpeaker(key);
  }

  /** Shows the call and publishes the local tracks. */
  async start(): Promise<void> {
    this.#el.hidden = false;
    this.#e2ee.reset();
    this.#chat.clear();
    this.#chat.send = (text) => this.room.sendChat(text);
    byId("room-title").textContent = this.room.name;
    document.title = `${this.room.name} · Encrypted meeting`;
    this.#wireRoom();
    this.#wireControls();
    // Keys normally arrive within a second or two; say so if they do not.
    const slow = setTimeout(() => {
      if (this.#roster.size === 0 && !this.#ended) this.#e2ee.setStatus("slow", 0);
    }, KEYS_EXPECTED_MS);
    this.#unsubscribe.push(() => clearTimeout(slow));
    for (const info of this.#allTrackInfos()) this.#muted.set(info.track_id, info.muted === true);
    this.#render();
    byId("room-title").focus();
    for (const device of ["microphone", "camera"] as const) {
      const track = this.#media[device];
      if (track !== undefined) await this.#publish(device, track, this.#on[device]);
    }
    this.#render();
  }

  #wireRoom(): void {
    const room = this.room;
    const on = (stop: () => void): void => {
      this.#unsubscribe.push(stop);
    };
    on(room.on("participantJoined", (p) => {
      for (const t of p.tracks.values()) this.#muted.set(t.track_id, t.muted === true);
      this.#chat.system(`${p.name} joined.`);
      this.#render();
    }));
    on(room.on("participantLeft", ({ participant }) => {
      this.#chat.system(`${participant.name} left.`);
      this.#render();
    }));
    on(room.on("trackPublished", (info) => {
      this.#muted.set(info.track_id, info.muted === true);
      this.#render();
    }));
    on(room.on("trackUnpublished", () => this.#render()));
    on(room.on("trackSubscribed", () => this.#render()));
    on(room.on("trackUnsubscribed", () => this.#render()));
    on(room.on("trackMuted", ({ trackId, muted }) => {
      this.#muted.set(trackId, muted);
      this.#render();
    }));
    on(room.on("verificationCodeChanged", (code) => {
      if (this.#e2ee.setCode(code)) this.#chat.system(`The verification code changed to ${code}: the people in the call changed.`);
    }));
    on(room.on("rosterChanged", (members) => {
      this.#roster = new Set(members.map((m) => m.identity));
      this.#e2ee.setStatus("ok", members.length);
      this.#checkRoster();
      this.#render();
    }));
    on(room.on("rosterMismatch", ({ mlsOnly, signalingOnly }) => this.#e2ee.showMismatch(mlsOnly, signalingOnly)));
    on(room.on("chat", ({ from, text }) => {
      const own = from === room.identity;
      this.#chat.add(this.#nameOf(from), text, own);
      if (!own && (this.#panel.hidden || byId("chat").hidden)) {
        this.#unread++;
        const badge = byId("unread");
        badge.hidden = false;
        badge.textContent = String(this.#unread);
        this.#buttons.chat.setAttribute("aria-label", `Chat, ${this.#unread} unread`);
      }
    }));
    on(room.on("signaling", (state) => {
      if (state === "reconnecting") this.#showBanner("Connection lost. Reconnecting…", "warning");
      else if (state === "resumed") this.#showBanner(undefined);
      else this.#showBanner("Reconnected as a new session: your camera and microphone were shared again.", "info", 5_000);
    }));
    on(room.on("connectionStateChanged", ({ state }) => {
      if (state === "failed") this.#showBanner("The media connection failed. Leave and join again if video does not come back.", "danger");
      else if (state === "disconnected") this.#showBanner("The media connection is interrupted. Waiting for it to come back…", "warning");
      else if (state === "connected" && this.#banner.dataset.kind !== "info") this.#showBanner(undefined);
    }));
    on(room.on("negotiationFailed", () =>
      this.#showBanner("Setting up media with the server failed. If video stops, leave and join again.", "warning", 8_000),
    ));
    on(room.on("serverError", ({ code }) => {
      if (code === "rate_limited") this.#showBanner("Slow down: the server limits how fast you can act.", "warning", 5_000);
    }));
    on(room.on("decryptFailures", (f) => {
      const failures = f.malformed + f.authFailed + f.replay + f.unknownKid + f.wrongSender;
      if (failures > 50) this.#e2ee.setStatus("problem", this.#roster.size);
    }));
    on(room.on("closed", (reason) => this.#end(closedMessage(reason))));
  }

  #wireControls(): void {
    const signal = this.#controls.signal;
    const b = this.#buttons;
    b.mic.addEventListener("click", () => void this.#toggle("microphone"), { signal });
    b.cam.addEventListener("click", () => void this.#toggle("camera"), { signal });
    b.screen.addEventListener("click", () => void this.#toggleScreen(), { signal });
    b.chat.addEventListener("click", () => this.#togglePanel("chat"), { signal });
    b.people.addEventListener("click", () => this.#togglePanel("people"), { signal });
    b.leave.addEventListener("click", () => void this.leave(), { signal });
    byId("panel-close").addEventListener("click", () => this.#togglePanel(undefined), { signal });
    this.#panel.addEventListener(
      "keydown",
      (e) => {
        if (e.key === "Escape") this.#togglePanel(undefined);
      },
      { signal },
    );
    b.screen.disabled = navigator.mediaDevices?.getDisplayMedia === undefined;
    if (b.screen.disabled) b.screen.title = "This browser cannot share its screen";
  }

  /** Leaves the room (the Leave button). */
  async leave(): Promise<void> {
    this.#buttons.leave.disabled = true;
    try {
      await this.room.leave();
    } finally {
      this.#end(undefined);
    }
  }

  #end(notice: UserError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const stop of this.#unsubscribe) stop();
    this.#controls.abort();
    this.#levels.close();
    this.#media.stop("camera");
    this.#media.stop("microphone");
    this.#screen?.stop();
    for (const el of this.#audio.values()) el.remove();
    this.#audio.clear();
    this.#grid.clear();
    this.#togglePanel(undefined);
    this.#showBanner(undefined);
    this.#buttons.leave.disabled = false;
    this.#el.hidden = true;
    this.onEnd(notice);
  }

  async #publish(cid: Device, track: MediaStreamTrack, on: boolean): Promise<void> {
    track.enabled = on;
    try {
      await this.room.publish(track, { source: cid });
      if (!on) this.room.setTrackMuted(cid, true);
    } catch (error) {
      this.#showBanner(publishError(error, cid).title, "danger", 8_000);
    }
  }

  /** Mutes or unmutes `device`; opens and publishes it first if the call started without it. */
  async #toggle(device: Device): Promise<void> {
    const track = this.#media[device];
    if (track === undefined) {
      const error = await this.#media.open(device);
      const opened = this.#media[device];
      if (error !== undefined || opened === undefined) {
        this.#showBanner(`${error?.title ?? `No ${device}`}. ${error?.detail ?? ""}`, "danger", 8_000);
        return;
      }
      this.#on[device] = true;
      await this.#publish(device, opened, true);
    } else {
      const on = !this.#on[device];
      this.#on[device] = on;
      track.enabled = on;
      // The others' indicator; the disabled track already sends silence or black.
      if (this.room.localTracks.has(device)) this.room.setTrackMuted(device, !on);
    }
    this.#render();
  }

  async #toggleScreen(): Promise<void> {
    if (this.#screen !== undefined) return this.#stopScreen();
    let track: MediaStreamTrack | undefined;
    try {
      [track] = (await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })).getVideoTracks();
    } catch (error) {
      // Cancelling the browser's picker is no error to report.
      if (!(error instanceof DOMException && error.name === "NotAllowedError")) {
        this.#showBanner("The screen could not be shared. Try again, or pick another window.", "warning", 6_000);
      }
      return;
    }
    if (track === undefined) return;
    this.#screen = track;
    // The browser's own "Stop sharing" ends the track.
    track.addEventListener("ended", () => void this.#stopScreen(), { once: true });
    this.#render();
    try {
      await this.room.publish(track, { source: "screen", cid: SCREEN_CID });
    } catch (error) {
      this.#showBanner(publishError(error, "screen").title, "danger", 8_000);
      track.stop();
      this.#screen = undefined;
    }
    this.#render();
  }

  async #stopScreen(): Promise<void> {
    const track = this.#screen;
    if (track === undefined) return;
    this.#screen = undefined;
    track.stop();
    this.#render();
    if (this.room.localTracks.has(SCREEN_CID) && !this.room.closed) await this.room.unpublish(SCREEN_CID).catch(() => undefined);
  }

  #togglePanel(which: "chat" | "people" | undefined): void {
    const chat = byId("chat");
    const people = byId("people");
    const showing = this.#panel.hidden ? undefined : chat.hidden ? "people" : "chat";
    const next = which === showing ? undefined : which;
    this.#panel.hidden = next === undefined;
    chat.hidden = next !== "chat";
    people.hidden = next !== "people";
    this.#el.classList.toggle("panel-open", next !== undefined);
    byId("panel-title").textContent = next === "people" ? "People" : "Chat";
    this.#buttons.chat.setAttribute("aria-pressed", String(next === "chat"));
    this.#buttons.people.setAttribute("aria-pressed", String(next === "people"));
    if (next === "chat") {
      this.#unread = 0;
      byId("unread").hidden = true;
      this.#buttons.chat.setAttribute("aria-label", "Chat");
      this.#chat.focus();
    } else if (next === "people") {
      byId("panel-close").focus();
    } else if (showing !== undefined && this.#panel.contains(document.activeElement)) {
      this.#buttons[showing].focus();
    }
  }

  /** Shows a banner (undefined hides it); `hideAfterMs` hides it again. */
  #showBanner(text: string | undefined, kind: "info" | "warning" | "danger" = "info", hideAfterMs?: number): void {
    this.#banner.hidden = text === undefined;
    this.#banner.textContent = text ?? "";
    this.#banner.dataset.kind = text === undefined ? "" : kind;
    this.#banner.className = `banner ${kind}`;
    if (text !== undefined && hideAfterMs !== undefined) {
      setTimeout(() => {
        if (this.#banner.textContent === text) this.#showBanner(undefined);
      }, hideAfterMs);
    }
  }

  /** Hides the mismatch warning once the group and the list agree again. */
  #checkRoster(): void {
    const listed = new Set([this.room.identity, ...[...this.room.participants.values()].map((p) => p.identity)]);
    if (listed.size === this.#roster.size && [...listed].every((i) => this.#roster.has(i))) this.#e2ee.hideMismatch();
  }

  #nameOf(identity: string): string {
    if (identity === this.room.identity) return this.myName;
    for (const p of this.room.participants.values()) if (p.identity === identity) return p.name;
    return identity;
  }

  #allTrackInfos(): TrackInfo[] {
    return [...this.room.participants.values()].flatMap((p) => [...p.tracks.values()]);
  }

  /** Brings the grid, the audio elements, the levels, the controls and the list to the room's state. */
  #render(): void {
    if (this.#ended) return;
    const room = this.room;
    const keep = new Set<string>();
    const people: Person[] = [];
    const subscribed = new Map<string, RemoteTrack>([...room.remoteTracks.values()].map((t) => [t.trackId, t]));

    // This member.
    keep.add(LOCAL);
    const me = this.#grid.ensure(LOCAL, { name: this.myName, identity: room.identity, local: true, screen: false });
    me.setVideo(this.#media.camera, this.#on.camera);
    me.setMicMuted(!this.#on.microphone || this.#media.microphone === undefined);
    if (this.#on.microphone && this.#media.microphone !== undefined) this.#levels.add(LOCAL, this.#media.microphone);
    else this.#levels.remove(LOCAL);
    if (this.#screen !== undefined) {
      const key = `${LOCAL}:screen`;
      keep.add(key);
      this.#grid.ensure(key, { name: this.myName, identity: room.identity, local: true, screen: true }).setVideo(this.#screen);
    }
    people.push({
      key: LOCAL, name: this.myName, identity: room.identity, local: true,
      micOn: this.#on.microphone && this.#media.microphone !== undefined,
      cameraOn: this.#on.camera && this.#media.camera !== undefined,
      sharing: this.#screen !== undefined,
    });

    // Everyone else.
    const liveAudio = new Set<string>();
    for (const p of room.participants.values()) {
      const infos = [...p.tracks.values()];
      const videos = infos.filter((t) => t.kind === "video");
      const camera = videos.find((t) => !isScreen(t, videos));
      const audio = infos.find((t) => t.kind === "audio");
      const cameraTrack = camera === undefined ? undefined : subscribed.get(camera.track_id);
      const cameraOn = camera !== undefined && this.#muted.get(camera.track_id) !== true;
      const micOn = audio !== undefined && this.#muted.get(audio.track_id) !== true;
      keep.add(p.participantId);
      const tile = this.#grid.ensure(p.participantId, { name: p.name, identity: p.identity, local: false, screen: false });
      tile.setVideo(cameraTrack?.mediaStreamTrack, cameraOn);
      tile.setMicMuted(!micOn);
      let sharing = false;
      for (const screen of videos.filter((t) => isScreen(t, videos))) {
        const track = subscribed.get(screen.track_id);
        if (track === undefined) continue;
        sharing = true;
        const key = `${p.participantId}:${screen.track_id}`;
        keep.add(key);
        this.#grid.ensure(key, { name: p.name, identity: p.identity, local: false, screen: true }).setVideo(track.mediaStreamTrack);
      }
      const audioTrack = audio === undefined ? undefined : subscribed.get(audio.track_id);
      if (audioTrack !== undefined) {
        liveAudio.add(audioTrack.trackId);
        this.#playAudio(audioTrack);
        if (micOn) this.#levels.add(p.participantId, audioTrack.mediaStreamTrack);
        else this.#levels.remove(p.participantId);
      } else {
        this.#levels.remove(p.participantId);
      }
      people.push({ key: p.participantId, name: p.name, identity: p.identity, local: false, micOn, cameraOn, sharing });
    }
    for (const [trackId, el] of this.#audio) {
      if (liveAudio.has(trackId)) continue;
      el.remove();
      this.#audio.delete(trackId);
    }
    for (const key of [...this.#grid.el.querySelectorAll<HTMLElement>(".tile")].map((t) => t.dataset.key ?? "")) {
      if (!keep.has(key)) {
        this.#grid.remove(key);
        this.#levels.remove(key);
      }
    }
    renderPeople(people, this.#roster);
    this.#renderControls();
  }

  #playAudio(track: RemoteTrack): void {
    const known = this.#audio.get(track.trackId);
    if (known !== undefined && known.srcObject instanceof MediaStream && known.srcObject.getAudioTracks()[0] === track.mediaStreamTrack) return;
    known?.remove();
    const el = h("audio", { autoplay: true, "data-track": track.trackId });
    el.srcObject = new MediaStream([track.mediaStreamTrack]);
    this.#el.append(el);
    this.#audio.set(track.trackId, el);
  }

  #renderControls(): void {
    const b = this.#buttons;
    const micOn = this.#on.microphone && this.#media.microphone !== undefined;
    const camOn = this.#on.camera && this.#media.camera !== undefined;
    setControl(b.mic, !micOn, micOn ? "mic" : "micOff", micOn ? "Mute" : "Unmute");
    setControl(b.cam, !camOn, camOn ? "camera" : "cameraOff", camOn ? "Stop video" : "Start video");
    setControl(b.screen, this.#screen !== undefined, "screen", this.#screen !== undefined ? "Stop sharing" : "Share screen");
    setIcon(b.chat, "chat");
    setIcon(b.people, "people");
    setIcon(b.leave, "leave");
  }
}

/**
 * A media control's state, icon and label. The label says what pressing
 * does ("Mute", "Unmute") and is the accessible name, so the button carries
 * no aria-pressed (which would say it twice).
 */
function setControl(button: HTMLButtonElement, active: boolean, iconName: Parameters<typeof setIcon>[1], label: string): void {
  button.dataset.active = String(active);
  setIcon(button, iconName);
  const text = button.querySelector(".label");
  if (text !== null) text.textContent = label;
}
