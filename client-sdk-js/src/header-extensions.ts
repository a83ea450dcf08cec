/**
 * Opting a transceiver in to the RTP dependency descriptor (DD) header
 * extension. Chromium knows the extension but leaves it `stopped`, so it
 * neither offers it nor accepts it in an answer unless the page asks with
 * `RTCRtpTransceiver.setHeaderExtensionsToNegotiate` (WebRTC Extensions).
 * With it on, Chromium puts a DD on every video packet, which the SFU reads
 * for frame boundaries and keyframes outside the (encrypted) payload.
 *
 * @module
 */

/**
 * The DD extension's URI, as Chromium and the SFU spell it in `a=extmap`
 * (AV1 RTP specification, appendix A.9).
 */
export const DEPENDENCY_DESCRIPTOR_URI =
  "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/** One entry of `getHeaderExtensionsToNegotiate()`. */
interface HeaderExtensionCapability {
  uri: string;
  direction: RTCRtpTransceiverDirection;
}

/** The WebRTC Extensions API, not yet in TypeScript's DOM types. */
interface TransceiverWithHeaderExtensions {
  getHeaderExtensionsToNegotiate?(): HeaderExtensionCapability[];
  setHeaderExtensionsToNegotiate?(extensions: HeaderExtensionCapability[]): void;
}

/**
 * Turns the DD extension on for `transceiver`'s next offer or answer.
 * Call it before `createOffer` (publisher) or between
 * `setRemoteDescription` and `createAnswer` (subscriber). Returns whether
 * the browser knows the extension; `false` also when the browser lacks the
 * API, and then nothing changes.
 */
export function enableDependencyDescriptor(transceiver: RTCRtpTransceiver): boolean {
  const t = transceiver as unknown as TransceiverWithHeaderExtensions;
  if (typeof t.getHeaderExtensionsToNegotiate !== "function") return false;
  if (typeof t.setHeaderExtensionsToNegotiate !== "function") return false;
  const extensions = t.getHeaderExtensionsToNegotiate();
  const dd = extensions.find((e) => e.uri === DEPENDENCY_DESCRIPTOR_URI);
  if (dd === undefined) return false;
  if (dd.direction === "stopped") {
    t.setHeaderExtensionsToNegotiate(
      extensions.map((e) => (e === dd ? { uri: e.uri, direction: "sendrecv" } : e)),
    );
  }
  return true;
}
