/**
 * A room: the signaling session, the two WebRTC transports, the roster and
 * the tracks, and (with E2EE) the engine that keys them.
 *
 * @module
 */

import type { DecryptFailures, E2eeEngine, E2eeEvents, E2eeStats, FrameProbe, RosterMember } from "./e2ee.js";
import { Emitter } from "./emitter.js";
import { ConnectError, type NegotiationFailure, PublishError, type ServerError } from "./errors.js";
import { type ResolvedOptions, sessionOptions } from "./options.js";
import type { ClientMessage, LeaveReason, MlsInfo, ParticipantInfo, RoomState, ServerMessage, Target, TrackInfo, TrackKind } from "./proto.js";
import { Publisher } from "./publisher.js";
import { type Joined, SignalSession } from "./signaling.js";
import { Subscriber } from "./subscriber.js";
import type {
  CloseReason,
  LocalTrackPublication,
  PublishOptions,
  RemoteParticipant,
  RemoteTrack,
  SignalingState,
  TrackSettings,
  TrackSource,
} from "./tracks.js";

/** Everything a {@link Room} emits, by event name. */
export interface RoomEvents extends E2eeEvents {
  /** Another participant joined. */
  participantJoined: RemoteParticipant;
  /** A participant left; its tracks are gone too. */
  participantLeft: { participant: RemoteParticipant; reason: LeaveReason };
  /** Another participant published a track. */
  trackPublished: TrackInfo;
  /** Another participant unpublished a track. */
  trackUnpublished: { participantId: string; trackId: string };
  /** Another participant muted or unmuted a track (its `TrackInfo.muted` is updated first). */
  trackMuted: { participantId: string; trackId: string; muted: boolean };
  /** A remote track's media arrives here now. */
  trackSubscribed: RemoteTrack;
  /** A remote track no longer arrives (unsubscribed, unpublished or its publisher left). */
  trackUnsubscribed: RemoteTrack;
  /**
   * The server stopped sending a subscribed video track because this
   * participant's bandwidth cannot carry even its lowest layer
   * (`paused: true`), or sends it again.
   */
  trackPaused: { trackId: string; paused: boolean };
  /** The room's dominant speaker changed (`undefined`: nobody speaks). */
  activeSpeaker: { participantId: string | undefined };
  /** A media transport's connection state changed. */
  connectionStateChanged: { target: Target; state: RTCPeerConnectionState };
  /** The signaling connection dropped or came back. */
  signaling: SignalingState;
  /** The server reported an error no request was waiting for. */
  serverError: ServerError;
  /** An SDP step failed; media on that transport may be affected. */
  negotiationFailed: NegotiationFailure;
  /** The room is closed; this is the last event. */
  closed: CloseReason;
}

/** A mutable participant record; the app sees it as {@link RemoteParticipant}. */
interface ParticipantRecord {
  participantId: string;
  identity: string;
  name: string;
  tracks: Map<string, TrackInfo>;
}

function record(info: ParticipantInfo): ParticipantRecord {
  return {
    participantId: info.participant_id,
    identity: info.identity,
    name: info.name,
    tracks: new Map(info.tracks.map((t) => [t.track_id, t])),
  };
}

/** A size limit as the protocol takes it: whole pixels, 0 to 65535 (a larger limit is no limit in practice). */
function pixels(n: number): number {
  return Number.isFinite(n) ? Math.min(65_535, Math.max(0, Math.round(n))) : 65_535;
}

/** Where and as whom the room was joined: kept to join again. */
export interface Credentials {
  url: string;
  /** Never logged. */
  token: string;
  identity: string;
}

/**
 * One server session of the room: its signaling session and its two
 * transports. A room that has to join again gets a new one; messages and
 * events of a replaced one are ignored.
 */
interface Membership {
  participantId: string;
  session: SignalSession;
  publisher: Publisher;
  subscriber: Subscriber;
}

/** One participant's membership of a room. Created by {@link connect}. */
export class Room extends Emitter<RoomEvents> {
  /** The identity the access token names (the MLS credential's identity). */
  readonly identity: string;
  /** The room's name. */
  readonly name: string;
  /** Whether the server subscribes this participant to every track. */
  readonly autoSubscribe: boolean;
  /** Whether media and chat are end-to-end encrypted. */
  readonly e2ee: boolean;
  readonly #credentials: Credentials;
  readonly #options: ResolvedOptions;
  readonly #engine: E2eeEngine | undefined;
  #m: Membership;
  readonly #participants = new Map<string, ParticipantRecord>();
  readonly #remoteTracks = new Map<string, RemoteTrack>();
  readonly #local = new Map<string, LocalTrackPublication>();
  /** How each local track was asked to be layered, by cid: kept to publish it again. */
  readonly #layering = new Map<string, { simulcast?: boolean; svc?: string }>();
  /** The app's {@link TrackSettings} by track id, sent after each `subscribed` of the track. */
  readonly #trackSettings = new Map<string, TrackSettings>();
  /** Tracks the server said it subscribed this participant to (`subscribed` until `unsubscribed`). */
  readonly #subscribed = new Set<string>();
  /** Remote tracks the server paused for bandwidth. */
  readonly #paused = new Set<string>();
  #activeSpeaker: string | undefined;
  #closed = false;
  readonly #e2eeState: {
    epoch: number | undefined;
    roster: RosterMember[];
    verificationCode: string | undefined;
    decryptFailures: DecryptFailures;
  } = {
    epoch: undefined,
    roster: [],
    verificationCode: undefined,
    decryptFailures: { malformed: 0, authFailed: 0, replay: 0, unknownKid: 0, wrongEpoch: 0, wrongSender: 0, unknownSender: 0, beforeJoin: 0, incomplete: 0 },
  };

  /** @internal Use {@link connect}. */
  constructor(
    credentials: Credentials,
    session: SignalSession,
    joined: Joined,
    options: ResolvedOptions,
    engine: E2eeEngine | undefined,
  ) {
    super();
    this.#credentials = credentials;
    this.identity = credentials.identity;
    this.name = joined.room.room;
    this.autoSubscribe = joined.autoSubscribe;
    this.e2ee = engine?.encrypts ?? false;
    this.#options = options;
    this.#engine = engine;
    for (const p of joined.room.participants) this.#participants.set(p.participant_id, record(p));
    this.#m = this.#begin(session, joined);
  }

  /**
   * Sets up the transports of a new server session, starts the engine's
   * membership and the session's message flow.
   */
  #begin(session: SignalSession, joined: Joined): Membership {
    const engine = this.#engine;
    const options = this.#options;
    const config: RTCConfiguration = { iceServers: options.iceServers, bundlePolicy: "max-bundle" };
    const send = session.send.bind(session);
    // Events of a replaced membership are dropped.
    const live = (): boolean => this.#m === m && !this.#closed;
    const failed = (target: Target) => (message: string) => {
      if (live()) this.emit("negotiationFailed", { target, message });
    };
    const state = (target: Target) => (s: RTCPeerConnectionState) => {
      if (live()) this.emit("connectionStateChanged", { target, state: s });
    };
    const publisher = new Publisher(
      {
        send,
        attachSender: engine && ((sender, track) => engine.attachSender(sender, track)),
        connectionState: state("publisher"),
        negotiationFailed: failed("publisher"),
      },
      config,
      options.negotiationTimeoutMs,
    );
    const subscriber = new Subscriber(
      {
        send,
        receiverCreated: (receiver, mid, kind) => engine?.attachReceiver(receiver, mid, kind),
        trackMapped: (trackId, mid, transceiver) => {
          if (live()) this.#trackMapped(trackId, mid, transceiver);
        },
        trackUnmapped: (trackId) => {
          if (live()) this.#trackUnmapped(trackId);
        },
        connectionState: state("subscriber"),
        negotiationFailed: failed("subscriber"),
      },
      config,
      options.dependencyDescriptor,
    );
    const m: Membership = { participantId: joined.participantId, session, publisher, subscriber };
    // Current before the session delivers anything (it may have messages already).
    this.#m = m;
    engine?.start({
      participantId: joined.participantId,
      identity: this.identity,
      room: joined.room,
      mls: joined.mls,
    });
    session.start({
      message: (message) => {
        if (live()) this.#onMessage(message);
      },
      reconnecting: () => {
        if (live()) this.emit("signaling", "reconnecting");
      },
      resumed: (room, mls) => {
        if (live()) this.#onResumed(room, mls);
      },
      lost: (serverRefused) => {
        if (!live()) return;
        if (serverRefused) void this.#rejoin();
        else this.#teardown({ kind: "connection_lost" });
      },
    });
    return m;
  }

  /**
   * The server no longer holds this session (it refused the resume): join
   * the room again as a new participant, with new transports, and publish
   * the same tracks again. Closes the room if no join succeeds within the
   * reconnect window.
   */
  async #rejoin(): Promise<void> {
    const old = this.#m;
    old.publisher.close();
    old.subscriber.close();
    for (const track of [...this.#remoteTracks.values()]) this.#trackUnmapped(track.trackId);
    this.#subscribed.clear();
    this.#paused.clear();
    const { url, token } = this.#credentials;
    const deadline = Date.now() + this.#options.reconnectWindowMs;
    let backoff = 100;
    let next: Awaited<ReturnType<typeof SignalSession.join>>;
    for (;;) {
      try {
        next = await SignalSession.join(url, token, sessionOptions(this.#options));
        break;
      } catch (error) {
        const refused = error instanceof ConnectError && error.kind === "unauthorized";
        if (refused || this.#closed || Date.now() + backoff >= deadline) {
          return this.#teardown({ kind: "connection_lost" });
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(backoff * 2, 1_000);
      }
    }
    if (this.#closed) {
      next.session.close();
      return;
    }
    this.#reconcile(next.joined.room);
    this.#m = this.#begin(next.session, next.joined);
    for (const publication of [...this.#local.values()]) {
      try {
        const published = await this.#m.publisher.publish({
          cid: publication.cid,
          track: publication.track,
          codec: publication.info.codec,
          e2ee: this.e2ee,
          dependencyDescriptor: this.#options.dependencyDescriptor,
          ...this.#layering.get(publication.cid),
        });
        this.#local.set(publication.cid, {
          ...publication,
          info: published.info,
          sender: published.transceiver.sender,
          layers: published.layers,
        });
      } catch (error) {
        this.#local.delete(publication.cid);
        this.#layering.delete(publication.cid);
        this.emit("negotiationFailed", { target: "publisher", message: `publishing ${publication.cid} again: ${String(error)}` });
      }
    }
    if (!this.#closed) this.emit("signaling", "rejoined");
  }

  /** Brings the roster to `room` (a fresh join's snapshot), with events for the differences. */
  #reconcile(room: RoomState): void {
    const now = new Map(room.participants.map((p) => [p.participant_id, p]));
    for (const [id, p] of [...this.#participants]) {
      if (now.has(id)) continue;
      this.#participants.delete(id);
      this.emit("participantLeft", { participant: p, reason: "disconnected" });
    }
    for (const info of room.participants) {
      const known = this.#participants.get(info.participant_id);
      if (known === undefined) {
        const p = record(info);
        this.#participants.set(p.participantId, p);
        this.emit("participantJoined", p);
      } else {
        known.tracks = new Map(info.tracks.map((t) => [t.track_id, t]));
      }
    }
  }

  /** This participant's id, assigned by the server (a new one after a rejoin). */
  get participantId(): string {
    return this.#m.participantId;
  }

  /** Everyone else in the room, by participant id. */
  get participants(): ReadonlyMap<string, RemoteParticipant> {
    return this.#participants;
  }

  /** The remote tracks arriving now, by track id. */
  get remoteTracks(): ReadonlyMap<string, RemoteTrack> {
    return this.#remoteTracks;
  }

  /** This participant's published tracks, by cid. */
  get localTracks(): ReadonlyMap<string, LocalTrackPublication> {
    return this.#local;
  }

  /** Whether the room is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * One of the two transports, for `getStats()` and diagnostics. Do not
   * negotiate on it: the SDK owns its SDP.
   */
  peerConnection(target: Target): RTCPeerConnection {
    return target === "publisher" ? this.#m.publisher.pc : this.#m.subscriber.pc;
  }

  /**
   * Publishes a camera, microphone or screen track. Resolves once the
   * server has accepted it; media flows once the publisher transport is
   * connected.
   *
   * @throws {PublishError}
   */
  async publish(track: MediaStreamTrack, options: PublishOptions = {}): Promise<LocalTrackPublication> {
    if (this.#closed) throw new PublishError("closed", "room closed");
    const kind = track.kind as TrackKind;
    const source: TrackSource = options.source ?? (kind === "video" ? "camera" : "microphone");
    const cid = options.cid ?? source;
    const codec = options.codec ?? (kind === "video" ? "VP8" : "opus");
    if (options.simulcast === true && options.svc !== undefined) {
      throw new PublishError("unsupported_codec", "simulcast and svc exclude each other");
    }
    const layering = kind === "video" ? { simulcast: options.simulcast, svc: options.svc } : {};
    const published = await this.#m.publisher.publish({
      cid,
      track,
      codec,
      e2ee: this.e2ee,
      dependencyDescriptor: this.#options.dependencyDescriptor,
      ...layering,
    });
    const publication: LocalTrackPublication = {
      cid,
      source,
      info: published.info,
      track,
      sender: published.transceiver.sender,
      layers: published.layers,
    };
    this.#local.set(cid, publication);
    this.#layering.set(cid, layering);
    return publication;
  }

  /** Stops publishing the track `cid`. The `MediaStreamTrack` itself is not stopped. */
  async unpublish(cid: string): Promise<void> {
    if (this.#closed) throw new PublishError("closed", "room closed");
    this.#local.delete(cid);
    this.#layering.delete(cid);
    await this.#m.publisher.unpublish(cid);
  }

  /**
   * Tells the others that the published track `cid` is muted (microphone
   * muted, camera off) or no longer is; they get `trackMuted`. Only a hint
   * for display: what the track sends is up to the app (e.g.
   * `track.enabled = false` sends silence or black frames).
   */
  setTrackMuted(cid: string, muted: boolean): void {
    if (this.#closed) throw new PublishError("closed", "room closed");
    if (!this.#local.has(cid)) throw new PublishError("not_found", `no published track has cid ${cid}`);
    this.#m.session.send({ type: "mute", cid, muted });
  }

  /** Asks the server to send a track (only needed without auto-subscribe). */
  subscribe(trackId: string): void {
    this.#m.session.send({ type: "subscribe", track_id: trackId });
  }

  /** Asks the server to stop sending a track. */
  unsubscribe(trackId: string): void {
    this.#m.session.send({ type: "unsubscribe", track_id: trackId });
  }

  /**
   * Tells the server how much of a remote video track to send: nothing
   * while it is not `visible`, and no layer larger than `maxWidth` ×
   * `maxHeight` (e.g. the size of the element showing it). The setting is
   * kept for the track and sent again each time the server subscribes
   * this participant to it (and after a resume), until the track is
   * unpublished; a later call replaces it.
   */
  setTrackSettings(trackId: string, settings: TrackSettings): void {
    if (this.#closed) return;
    this.#trackSettings.set(trackId, { ...settings });
    if (this.#subscribed.has(trackId)) this.#sendTrackSettings(trackId);
  }

  /** The settings last given for a remote track with {@link setTrackSettings}. */
  trackSettings(trackId: string): TrackSettings | undefined {
    const s = this.#trackSettings.get(trackId);
    return s === undefined ? undefined : { ...s };
  }

  /** Whether the server paused this remote track for lack of bandwidth (see `trackPaused`). */
  isTrackPaused(trackId: string): boolean {
    return this.#paused.has(trackId);
  }

  /** The participant id of the room's dominant speaker, as the server last said (this one's own included). */
  get activeSpeaker(): string | undefined {
    return this.#activeSpeaker;
  }

  #sendTrackSettings(trackId: string): void {
    const s = this.#trackSettings.get(trackId);
    if (s === undefined) return;
    this.#m.session.send({
      type: "track_settings",
      track_id: trackId,
      visible: s.visible ?? true,
      ...(s.maxWidth !== undefined ? { max_width: pixels(s.maxWidth) } : {}),
      ...(s.maxHeight !== undefined ? { max_height: pixels(s.maxHeight) } : {}),
    });
  }

  /** A remote track is gone for good: forget what was kept for it. */
  #trackGone(trackId: string): void {
    this.#subscribed.delete(trackId);
    this.#paused.delete(trackId);
    this.#trackSettings.delete(trackId);
  }

  /**
   * Sends an end-to-end encrypted chat message; it arrives at every member
   * (this one included) as a `chat` event, in the same order everywhere.
   *
   * @throws {Error} in a room without E2EE: chat exists only encrypted.
   */
  sendChat(text: string): void {
    if (this.#engine === undefined || !this.e2ee) throw new Error("chat needs end-to-end encryption (e2ee: true)");
    this.#engine.sendChat(text);
  }

  /**
   * Leaves the room: sends `leave`, waits briefly for the server to close
   * the connection, and closes both transports. Idempotent.
   */
  async leave(): Promise<void> {
    if (this.#closed) return;
    await this.#m.session.leave();
    this.#teardown({ kind: "left" });
  }

  /**
   * Drops the signaling connection as a network failure would (no
   * `leave`): the room reconnects and resumes. For tests only.
   */
  dropSignalingForTest(): void {
    this.#m.session.dropConnectionForTest();
  }

  /** The E2EE frame probe, with the `frameProbe` test hook. For tests only. */
  frameProbeForTest(): FrameProbe | undefined {
    return this.#engine?.probe;
  }

  /** @internal Sends a message on the current signaling session (the E2EE engine's host). */
  sendSignal(message: ClientMessage): void {
    if (!this.#closed) this.#m.session.send(message);
  }

  /** @internal The E2EE engine's events, through its host. */
  emitE2ee<K extends keyof E2eeEvents>(name: K, payload: E2eeEvents[K]): void {
    if (this.#closed) return;
    const e = this.#e2eeState;
    if (name === "epochChanged") e.epoch = (payload as E2eeEvents["epochChanged"]).epoch;
    if (name === "rosterChanged") e.roster = payload as E2eeEvents["rosterChanged"];
    if (name === "verificationCodeChanged") e.verificationCode = payload as string;
    if (name === "decryptFailures") e.decryptFailures = payload as DecryptFailures;
    this.emit(name, payload as RoomEvents[K]);
  }

  /** The current MLS epoch, once this member is in the group (E2EE only). */
  get epoch(): number | undefined {
    return this.#e2eeState.epoch;
  }

  /** The MLS group's members in the current epoch (E2EE only). */
  get roster(): readonly RosterMember[] {
    return this.#e2eeState.roster;
  }

  /**
   * The code members compare out of band: equal codes mean the same group,
   * with the same members, in the same epoch (E2EE only).
   */
  get verificationCode(): string | undefined {
    return this.#e2eeState.verificationCode;
  }

  /** Frames dropped instead of decoded, by reason; running totals. */
  get decryptFailures(): DecryptFailures {
    return this.#e2eeState.decryptFailures;
  }

  /** Frames encrypted and decrypted so far and the time spent in the wasm; `undefined` without E2EE. */
  e2eeStats(): E2eeStats | undefined {
    return this.#engine?.stats();
  }

  #onMessage(message: ServerMessage): void {
    switch (message.type) {
      case "offer":
        if (message.target === "subscriber") void this.#m.subscriber.onOffer(message.sdp);
        break;
      case "answer":
        if (message.target === "publisher") this.#m.publisher.onAnswer(message.sdp);
        break;
      case "candidate": {
        const transport = message.target === "publisher" ? this.#m.publisher : this.#m.subscriber;
        transport.onCandidate(message.candidate).catch((error: unknown) =>
          this.emit("negotiationFailed", { target: message.target, message: String(error) }),
        );
        break;
      }
      case "track_accepted":
        this.#m.publisher.onTrackAccepted(message.cid, message.track);
        break;
      case "participant_joined":
        this.#participantJoined(message.participant);
        break;
      case "participant_left":
        this.#participantLeft(message.participant_id, message.reason);
        break;
      case "track_published": {
        const p = this.#participants.get(message.track.participant_id);
        p?.tracks.set(message.track.track_id, message.track);
        this.emit("trackPublished", message.track);
        break;
      }
      case "track_unpublished": {
        this.#m.subscriber.onUnsubscribed(message.track_id);
        this.#trackGone(message.track_id);
        this.#participants.get(message.participant_id)?.tracks.delete(message.track_id);
        this.emit("trackUnpublished", { participantId: message.participant_id, trackId: message.track_id });
        break;
      }
      case "track_muted": {
        const track = this.#participants.get(message.participant_id)?.tracks.get(message.track_id);
        if (track !== undefined) track.muted = message.muted;
        this.emit("trackMuted", { participantId: message.participant_id, trackId: message.track_id, muted: message.muted });
        break;
      }
      case "subscribed":
        this.#subscribed.add(message.track_id);
        this.#m.subscriber.onSubscribed(message.track_id, message.mid);
        // A new subscription starts from the server's defaults.
        this.#sendTrackSettings(message.track_id);
        break;
      case "unsubscribed":
        this.#subscribed.delete(message.track_id);
        this.#paused.delete(message.track_id);
        this.#m.subscriber.onUnsubscribed(message.track_id);
        break;
      case "track_paused":
        if (message.paused) this.#paused.add(message.track_id);
        else this.#paused.delete(message.track_id);
        this.emit("trackPaused", { trackId: message.track_id, paused: message.paused });
        break;
      case "active_speaker":
        this.#activeSpeaker = message.participant_id ?? undefined;
        this.emit("activeSpeaker", { participantId: this.#activeSpeaker });
        break;
      case "publisher_layers":
        this.#m.publisher.onPublisherLayers(message.track_id, message.active);
        break;
      case "mls":
      case "mls_commit_rejected":
        this.#engine?.serverMessage(message);
        break;
      case "closed":
        this.#teardown({ kind: "server", reason: message.reason });
        break;
      case "error":
        if (message.code === "mls_gap") this.#engine?.logGap();
        else if (!this.#m.publisher.onError(message.code, message.message)) {
          this.emit("serverError", { code: message.code, message: message.message });
        }
        break;
      default:
        // pong, and anything a newer server sends that this SDK does not know.
        break;
    }
  }

  #participantJoined(info: ParticipantInfo): void {
    // After a resume, a held `participant_joined` may name someone the
    // `resumed` snapshot already listed: apply it once.
    if (this.#participants.has(info.participant_id)) return;
    const p = record(info);
    this.#participants.set(p.participantId, p);
    this.#engine?.participantJoined(info);
    this.emit("participantJoined", p);
  }

  #participantLeft(participantId: string, reason: LeaveReason): void {
    const p = this.#participants.get(participantId);
    if (p === undefined) return;
    this.#participants.delete(participantId);
    // No separate `track_unpublished` comes for a departed participant's tracks.
    for (const track of [...this.#remoteTracks.values()]) {
      if (track.participantId === participantId) this.#m.subscriber.onUnsubscribed(track.trackId);
    }
    for (const trackId of p.tracks.keys()) this.#trackGone(trackId);
    this.#engine?.participantLeft(participantId);
    this.emit("participantLeft", { participant: p, reason });
  }

  #onResumed(room: RoomState, mls: MlsInfo): void {
    for (const info of room.participants) {
      const known = this.#participants.get(info.participant_id);
      if (known === undefined) this.#participantJoined(info);
      else for (const t of info.tracks) known.tracks.set(t.track_id, t);
    }
    this.#engine?.resumed(mls);
    // The server kept the subscriptions; settings sent while the connection
    // was down were queued, but one lost in the drop would not be.
    for (const trackId of this.#subscribed) this.#sendTrackSettings(trackId);
    this.emit("signaling", "resumed");
  }

  #trackMapped(trackId: string, mid: string, transceiver: RTCRtpTransceiver): void {
    let info: TrackInfo | undefined;
    for (const p of this.#participants.values()) info ??= p.tracks.get(trackId);
    // The server announces every track before `subscribed`; an unknown one
    // is still delivered, with what the transceiver tells.
    const track: RemoteTrack = {
      trackId,
      participantId: info?.participant_id ?? "",
      kind: info?.kind ?? (transceiver.receiver.track.kind as TrackKind),
      codec: info?.codec ?? "",
      e2ee: info?.e2ee ?? false,
      mid,
      mediaStreamTrack: transceiver.receiver.track,
      receiver: transceiver.receiver,
    };
    this.#remoteTracks.set(trackId, track);
    this.#engine?.receiverAssigned(transceiver.receiver, {
      trackId,
      participantId: track.participantId,
      kind: track.kind,
      codec: track.codec,
      mid,
    });
    this.emit("trackSubscribed", track);
  }

  #trackUnmapped(trackId: string): void {
    const track = this.#remoteTracks.get(trackId);
    if (track === undefined) return;
    this.#remoteTracks.delete(trackId);
    this.#engine?.receiverUnassigned(track.mid);
    this.emit("trackUnsubscribed", track);
  }

  /** Closes everything once and says why. */
  #teardown(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#m.session.close();
    this.#m.publisher.close();
    this.#m.subscriber.close();
    this.#engine?.close();
    this.emit("closed", reason);
  }
}
