/**
 * The local camera and microphone: opening them (with the chosen devices),
 * switching devices, and listing what the browser offers.
 *
 * @module
 */

import { UserError, mediaError } from "./messages.js";

/** A local capture device. */
export type Device = "camera" | "microphone";

/** What each device is asked for; the person's device choice is added. */
const CONSTRAINTS: Record<Device, MediaTrackConstraints> = {
  camera: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
  microphone: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
};

/** The camera and microphone tracks this page holds, and the devices chosen. */
export class LocalMedia {
  camera: MediaStreamTrack | undefined;
  microphone: MediaStreamTrack | undefined;
  /** The chosen device of each kind ("" for the browser's default). */
  readonly deviceId: Record<Device, string> = { camera: "", microphone: "" };

  /** (Re)opens `device`; resolves with the error a person can act on, if any. */
  async open(device: Device): Promise<UserError | undefined> {
    this.stop(device);
    const constraints: MediaTrackConstraints = { ...CONSTRAINTS[device] };
    if (this.deviceId[device] !== "") constraints.deviceId = { exact: this.deviceId[device] };
    try {
      const stream = await mediaDevices().getUserMedia(device === "camera" ? { video: constraints } : { audio: constraints });
      const [track] = stream.getTracks();
      this[device] = track;
      this.deviceId[device] = track?.getSettings().deviceId ?? this.deviceId[device];
      return undefined;
    } catch (error) {
      return error instanceof UserError ? error : mediaError(error, device);
    }
  }

  /** Stops and forgets `device`'s track. */
  stop(device: Device): void {
    this[device]?.stop();
    this[device] = undefined;
  }

  /** Hands the tracks over (to the call), leaving this object empty. */
  take(): { camera: MediaStreamTrack | undefined; microphone: MediaStreamTrack | undefined } {
    const out = { camera: this.camera, microphone: this.microphone };
    this.camera = undefined;
    this.microphone = undefined;
    return out;
  }
}

/** The cameras and microphones the browser lists (labels once access was granted). */
export async function listDevices(): Promise<{ cameras: MediaDeviceInfo[]; microphones: MediaDeviceInfo[] }> {
  const all = await mediaDevices().enumerateDevices();
  return {
    cameras: all.filter((d) => d.kind === "videoinput" && d.deviceId !== ""),
    microphones: all.filter((d) => d.kind === "audioinput" && d.deviceId !== ""),
  };
}

/** The browser's media devices; absent outside a secure context. */
export function mediaDevices(): MediaDevices {
  if (navigator.mediaDevices === undefined) {
    throw new UserError(
      "Camera and microphone need a secure page",
      "Open this page over https:// (or at http://localhost or http://127.0.0.1 on this machine).",
    );
  }
  return navigator.mediaDevices;
}
