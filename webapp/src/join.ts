/**
 * The join screen: room and name, the camera preview and microphone meter,
 * device pickers, and what went wrong last time.
 *
 * @module
 */

import { byId } from "./dom.js";
import { AudioLevels } from "./levels.js";
import { type Device, LocalMedia, listDevices } from "./media.js";
import { UserError } from "./messages.js";
import type { TokenClaims } from "./tokens.js";

/** What the person asked for when pressing Join. */
export interface JoinRequest {
  room: string;
  name: string;
  /** The tracks to publish (absent when off or unavailable). */
  camera: MediaStreamTrack | undefined;
  microphone: MediaStreamTrack | undefined;
  /** Whether they start switched on. */
  cameraOn: boolean;
  microphoneOn: boolean;
}

const NAME_KEY = "meeting.name";

/** Shows an error box's title and detail; undefined hides it. */
export function showError(box: HTMLElement, error: UserError | undefined): void {
  box.hidden = error === undefined;
  if (error === undefined) return;
  const [title, detail] = [box.querySelector(".error-title"), box.querySelector(".error-detail")];
  if (title !== null) title.textContent = error.title;
  if (detail !== null) detail.textContent = error.detail;
}

/** The join screen. */
export class JoinScreen {
  readonly #el = byId("join");
  readonly #form = byId<HTMLFormElement>("join-form");
  readonly #room = byId<HTMLInputElement>("room");
  readonly #name = byId<HTMLInputElement>("name");
  readonly #cameraSelect = byId<HTMLSelectElement>("camera-select");
  readonly #micSelect = byId<HTMLSelectElement>("mic-select");
  readonly #preview = byId<HTMLVideoElement>("preview");
  readonly #previewOff = byId("preview-off");
  readonly #micButton = byId<HTMLButtonElement>("preview-mic");
  readonly #camButton = byId<HTMLButtonElement>("preview-cam");
  readonly #meter = byId("mic-meter");
  readonly #mediaError = byId("media-error");
  readonly #joinError = byId("join-error");
  readonly #joinButton = byId<HTMLButtonElement>("join-button");
  readonly #notice = byId("join-notice");
  readonly #media = new LocalMedia();
  readonly #on: Record<Device, boolean> = { camera: true, microphone: true };
  #levels: AudioLevels | undefined;
  #busy = false;
  /** The last camera or microphone change, settled. */
  #settled: Promise<void> = Promise.resolve();
  /** Joining with the address's token: the fields are not asked for. */
  #invitation = false;
  /** Called on Join with the request; resolves once joined or rejects with what to show. */
  onJoin: (request: JoinRequest) => Promise<void> = async () => {};

  constructor(private readonly audio: () => AudioContext) {
    this.#form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.#submit();
    });
    this.#camButton.addEventListener("click", () => this.#queueMedia(() => this.#set("camera", !this.#on.camera)));
    this.#micButton.addEventListener("click", () => this.#queueMedia(() => this.#set("microphone", !this.#on.microphone)));
    byId("media-retry").addEventListener("click", () => this.#queueMedia(() => this.#openMedia()));
    this.#cameraSelect.addEventListener("change", () => {
      this.#media.deviceId.camera = this.#cameraSelect.value;
      this.#queueMedia(() => this.#set("camera", true));
    });
    this.#micSelect.addEventListener("change", () => {
      this.#media.deviceId.microphone = this.#micSelect.value;
      this.#queueMedia(() => this.#set("microphone", true));
    });
    for (const input of [this.#room, this.#name]) {
      input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
    }
    this.#name.value = localStorage.getItem(NAME_KEY) ?? "";
    // A camera or headset plugged in or out while choosing.
    navigator.mediaDevices?.addEventListener("devicechange", () => {
      if (!this.#el.hidden) void this.#fillDevices();
    });
  }

  /**
   * Shows the screen, with `notice` (why the last call ended) if any. With
   * an invitation (a token in the address) the token decides the room and
   * name: the fields show what it says (`claims`, when readable) and cannot
   * be edited.
   */
  show(options: { room?: string; invitation?: { claims: TokenClaims | undefined }; notice?: UserError } = {}): void {
    this.#el.hidden = false;
    document.title = "Join · Encrypted meeting";
    this.notice(options.notice);
    showError(this.#joinError, undefined);
    this.#invitation = options.invitation !== undefined;
    if (options.invitation !== undefined) {
      const claims = options.invitation.claims;
      this.#room.value = claims?.room ?? "";
      this.#name.value = claims?.name ?? "";
      this.#room.placeholder = this.#name.placeholder = "from the invitation link";
      this.#room.readOnly = this.#name.readOnly = true;
      byId("token-note").hidden = false;
    } else if (options.room !== undefined && this.#room.value === "") {
      this.#room.value = options.room;
    }
    this.#setBusy(false);
    byId("join-title").focus();
    this.#queueMedia(() => this.#openMedia());
  }

  /** Hides the screen and hands over the open camera and microphone (and the devices chosen). */
  hide(): { camera: MediaStreamTrack | undefined; microphone: MediaStreamTrack | undefined; deviceId: Record<Device, string> } {
    this.#el.hidden = true;
    this.#levels?.close();
    this.#levels = undefined;
    this.#preview.srcObject = null;
    return { ...this.#media.take(), deviceId: { ...this.#media.deviceId } };
  }

  /** Shows a notice above the form (undefined hides it). */
  notice(notice: UserError | undefined): void {
    this.#notice.hidden = notice === undefined;
    this.#notice.textContent = notice === undefined ? "" : `${notice.title}. ${notice.detail}`;
  }

  /**
   * Runs a change of the camera or microphone after the ones before it, so
   * that they never interleave and Join can wait for the last one (a track
   * still opening when Join is pressed goes into the call).
   */
  #queueMedia(change: () => Promise<void>): void {
    this.#settled = this.#settled.then(change).catch(() => undefined);
  }

  async #openMedia(): Promise<void> {
    showError(this.#mediaError, undefined);
    await this.#set("camera", this.#on.camera);
    await this.#set("microphone", this.#on.microphone);
    await this.#fillDevices();
  }

  /** Switches `device` on (opening it) or off (releasing it), and updates the preview or the meter. */
  async #set(device: Device, on: boolean): Promise<void> {
    this.#on[device] = on;
    const label = device === "camera" ? "Camera" : "Microphone";
    setPressed(device === "camera" ? this.#camButton : this.#micButton, on, `${label} on`, `${label} off`);
    let error: UserError | undefined;
    if (on) error = await this.#media.open(device);
    else this.#media.stop(device);
    if (device === "camera") this.#showPreview(on);
    else this.#startMeter();
    if (error !== undefined) showError(this.#mediaError, error);
  }

  #showPreview(on: boolean): void {
    const track = this.#media.camera;
    this.#preview.srcObject = track === undefined ? null : new MediaStream([track]);
    this.#previewOff.hidden = track !== undefined;
    this.#previewOff.textContent = on ? "No camera" : "Camera off";
  }

  #startMeter(): void {
    this.#levels?.close();
    this.#levels = undefined;
    this.#meter.parentElement?.setAttribute("aria-valuenow", "0");
    this.#meter.dataset.level = "0";
    const track = this.#media.microphone;
    if (track === undefined) return;
    const levels = new AudioLevels(this.audio());
    levels.add("local", track);
    levels.onLevels = (l) => {
      const percent = Math.round((l.get("local") ?? 0) * 100);
      this.#meter.parentElement?.setAttribute("aria-valuenow", String(percent));
      // Ten steps, styled by the sheet (no inline style under the CSP).
      this.#meter.dataset.level = String(Math.round(percent / 10));
    };
    this.#levels = levels;
  }

  async #fillDevices(): Promise<void> {
    let devices: Awaited<ReturnType<typeof listDevices>>;
    try {
      devices = await listDevices();
    } catch {
      return;
    }
    fill(this.#cameraSelect, devices.cameras, this.#media.deviceId.camera, "camera");
    fill(this.#micSelect, devices.microphones, this.#media.deviceId.microphone, "microphone");
  }

  async #submit(): Promise<void> {
    if (this.#busy) return;
    const room = this.#room.value.trim();
    const name = this.#name.value.trim();
    const missing = this.#invitation ? undefined : room === "" ? this.#room : name === "" ? this.#name : undefined;
    if (missing !== undefined) {
      missing.setAttribute("aria-invalid", "true");
      const what = missing === this.#room ? "a room name" : "your name";
      showError(this.#joinError, new UserError(`Enter ${what}`, "It is needed to join."));
      missing.focus();
      return;
    }
    if (!this.#invitation) localStorage.setItem(NAME_KEY, name);
    showError(this.#joinError, undefined);
    this.#setBusy(true);
    await this.#settled;
    const request: JoinRequest = {
      room,
      name,
      camera: this.#media.camera,
      microphone: this.#media.microphone,
      cameraOn: this.#on.camera && this.#media.camera !== undefined,
      microphoneOn: this.#on.microphone && this.#media.microphone !== undefined,
    };
    try {
      await this.onJoin(request);
    } catch (error) {
      this.#setBusy(false);
      showError(this.#joinError, error as UserError);
      this.#joinButton.focus();
    }
  }

  #setBusy(busy: boolean): void {
    this.#busy = busy;
    this.#joinButton.disabled = busy;
    this.#joinButton.textContent = busy ? "Joining…" : "Join";
    this.#form.setAttribute("aria-busy", String(busy));
  }
}

/** The label says the state; styled by `data-active` (no aria-pressed, which would say it twice). */
function setPressed(button: HTMLButtonElement, on: boolean, onText: string, offText: string): void {
  button.dataset.active = String(on);
  button.textContent = on ? onText : offText;
}

function fill(select: HTMLSelectElement, devices: MediaDeviceInfo[], current: string, what: string): void {
  select.replaceChildren();
  devices.forEach((d, i) => {
    const option = document.createElement("option");
    option.value = d.deviceId;
    option.textContent = d.label !== "" ? d.label : `${what[0]?.toUpperCase()}${what.slice(1)} ${i + 1}`;
    option.selected = d.deviceId === current;
    select.append(option);
  });
  if (devices.length === 0) {
    const option = document.createElement("option");
    option.textContent = `No ${what} found`;
    option.value = "";
    select.append(option);
  }
  select.disabled = devices.length === 0;
}
