/**
 * The signaling session: one WebSocket at a time to `/rtc`, the join, a
 * protocol `ping` keepalive, and resume after the connection drops
 * (docs/protocol.md §1, §9, §14).
 *
 * Messages sent while the connection is down are queued and go out, in
 * order, on the resumed connection. Media keeps flowing meanwhile: the
 * server keeps a suspended participant in its room.
 *
 * @module
 */

import { ConnectError } from "./errors.js";
import {
  type ClientMessage,
  type ErrorCode,
  type MlsInfo,
  PROTOCOL_VERSION,
  type RoomState,
  type ServerMessage,
  parseServerMessage,
} from "./proto.js";

/** What the server said when it admitted us. */
export interface Joined {
  participantId: string;
  room: RoomState;
  autoSubscribe: boolean;
  mls: MlsInfo;
}

/** What the session reports to its owner. */
export interface SessionHandlers {
  /** Every server message after `joined` (and after each `resumed`), in order. */
  message(message: ServerMessage): void;
  /** The connection dropped; reconnecting with resume. */
  reconnecting(): void;
  /** The session was resumed on a new connection (`resumed` came). */
  resumed(room: RoomState, mls: MlsInfo): void;
  /**
   * The session is gone: the server ended it, refused the resume, or the
   * reconnect window passed. `serverRefused` is true when the server no
   * longer holds the session (a plain join may still work).
   */
  lost(serverRefused: boolean): void;
}

/** How long `leave` waits for the server's close before closing itself. */
const LEAVE_FLUSH_MS = 2_000;

/** Options the session uses. */
export interface SessionOptions {
  connectTimeoutMs: number;
  pingIntervalMs: number;
  reconnectWindowMs: number;
}

/** Checks that `url` is a `ws:` or `wss:` URL. */
function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectError("invalid_url", `${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new ConnectError("invalid_url", `${JSON.stringify(url)} is not a ws:// or wss:// URL`);
  }
}

/** The error a refused join maps to. */
function joinRefused(code: ErrorCode, message: string): ConnectError {
  switch (code) {
    case "unauthorized":
    case "forbidden":
      return new ConnectError("unauthorized", message, code);
    case "protocol_version":
      return new ConnectError("protocol_version", message, code);
    default:
      return new ConnectError("refused", message, code);
  }
}

/**
 * Opens a WebSocket to `url`, sends `join` and resolves with the socket and
 * the server's first reply (`joined` or `resumed`), all within `timeoutMs`.
 * Messages after that reply are left for the caller's `onmessage`, which it
 * must install before returning to the event loop.
 */
function openAndJoin(
  url: string,
  join: ClientMessage,
  timeoutMs: number,
): Promise<{ ws: WebSocket; reply: ServerMessage }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let settled = false;
    const fail = (error: ConnectError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new ConnectError("timeout", `no answer from the server within ${timeoutMs} ms`)),
      timeoutMs,
    );
    ws.onopen = () => ws.send(JSON.stringify(join));
    ws.onerror = () => fail(new ConnectError("unreachable", "the signaling connection failed"));
    ws.onclose = (event) =>
      fail(new ConnectError("unreachable", `the server closed the connection (code ${event.code})`));
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      const message = parseServerMessage(event.data);
      if (message === undefined || message.type === "pong") return;
      if (message.type === "joined" || message.type === "resumed") {
        settled = true;
        clearTimeout(timer);
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        resolve({ ws, reply: message });
      } else if (message.type === "error") {
        fail(joinRefused(message.code, message.message));
      } else {
        fail(new ConnectError("refused", `unexpected ${message.type} before joined`));
      }
    };
  });
}

/** One participant's signaling session. Created by {@link SignalSession.join}. */
export class SignalSession {
  readonly participantId: string;
  readonly #url: string;
  /** Kept to resume; never logged. */
  readonly #token: string;
  /** Proves a resume is this session; never logged. */
  readonly #resumeToken: string;
  readonly #options: SessionOptions;
  #handlers: SessionHandlers | undefined;
  #ws: WebSocket | undefined;
  /** Messages waiting for a connection. */
  #queue: ClientMessage[] = [];
  /** The last MLS log entry seen: where a resume continues. */
  #mlsSeq: number;
  #lastHeard = Date.now();
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  readonly #started = Date.now();

  private constructor(
    url: string,
    token: string,
    options: SessionOptions,
    ws: WebSocket,
    joined: Extract<ServerMessage, { type: "joined" }>,
  ) {
    this.#url = url;
    this.#token = token;
    this.#options = options;
    this.participantId = joined.participant_id;
    this.#resumeToken = joined.resume_token;
    this.#mlsSeq = joined.mls.seq;
    this.#ws = ws;
  }

  /**
   * Connects and joins. Messages that arrive before {@link start} are
   * queued in the socket's own buffer by not reading it: `start` must be
   * called in the same task.
   */
  static async join(
    url: string,
    token: string,
    options: SessionOptions,
  ): Promise<{ session: SignalSession; joined: Joined }> {
    checkUrl(url);
    const join: ClientMessage = { type: "join", protocol: PROTOCOL_VERSION, token };
    const { ws, reply } = await openAndJoin(url, join, options.connectTimeoutMs);
    if (reply.type !== "joined") {
      ws.close();
      throw new ConnectError("refused", `unexpected ${reply.type} in reply to join`);
    }
    if (reply.protocol !== PROTOCOL_VERSION) {
      ws.close();
      throw new ConnectError("protocol_version", `server joined us with protocol ${reply.protocol}`);
    }
    const session = new SignalSession(url, token, options, ws, reply);
    session.#attach(ws);
    return {
      session,
      joined: {
        participantId: reply.participant_id,
        room: reply.room,
        autoSubscribe: reply.auto_subscribe,
        mls: reply.mls,
      },
    };
  }

  /**
   * Starts delivering server messages to `handlers` and the keepalive.
   * Messages that came before are delivered first, in order.
   */
  start(handlers: SessionHandlers): void {
    this.#handlers = handlers;
    const early = this.#early;
    this.#early = [];
    for (const message of early) this.#dispatch(message);
    const interval = Math.max(this.#options.pingIntervalMs, 10);
    this.#pingTimer = setInterval(() => this.#keepalive(interval), interval);
  }

  /** Messages that arrived between `joined` and {@link start}. */
  #early: ServerMessage[] = [];

  /** The last MLS log sequence number received. */
  get mlsSeq(): number {
    return this.#mlsSeq;
  }

  /** Whether the session has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends `message` now, or queues it until the connection is back. */
  send(message: ClientMessage): void {
    if (this.#closed) return;
    const ws = this.#ws;
    if (ws !== undefined && ws.readyState === WebSocket.OPEN && this.#queue.length === 0) {
      ws.send(JSON.stringify(message));
    } else {
      this.#queue.push(message);
    }
  }

  /**
   * Sends `leave` and waits (at most 2 s) for the server to close the
   * connection, then closes it. Idempotent.
   */
  async leave(): Promise<void> {
    if (this.#closed) return;
    const ws = this.#ws;
    this.#shutdown();
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) {
      ws?.close();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, LEAVE_FLUSH_MS);
      function done(): void {
        clearTimeout(timer);
        ws!.close();
        resolve();
      }
      ws.onclose = done;
      ws.onerror = done;
      ws.onmessage = (event) => {
        const message = typeof event.data === "string" ? parseServerMessage(event.data) : undefined;
        if (message?.type === "closed") done();
      };
      ws.send(JSON.stringify({ type: "leave" } satisfies ClientMessage));
    });
  }

  /** Ends the session without `leave` (the server suspends, then drops it). */
  close(): void {
    const ws = this.#ws;
    this.#shutdown();
    ws?.close();
  }

  /**
   * Drops the current connection as a network failure would, without
   * `leave`: the session then reconnects and resumes. For tests of resume.
   */
  dropConnectionForTest(): void {
    this.#ws?.close(4000, "dropped by the client for a test");
  }

  #shutdown(): void {
    this.#closed = true;
    clearInterval(this.#pingTimer);
    if (this.#ws !== undefined) {
      this.#ws.onmessage = this.#ws.onclose = this.#ws.onerror = null;
    }
    this.#ws = undefined;
    this.#queue = [];
  }

  /** Makes `ws` the current connection: reads it, and reconnects when it drops. */
  #attach(ws: WebSocket): void {
    this.#ws = ws;
    this.#lastHeard = Date.now();
    ws.onmessage = (event) => {
      if (ws !== this.#ws) return;
      this.#lastHeard = Date.now();
      if (typeof event.data !== "string") return;
      const message = parseServerMessage(event.data);
      if (message === undefined) {
        console.warn("malformed server message ignored");
        return;
      }
      if (this.#handlers === undefined) this.#early.push(message);
      else this.#dispatch(message);
    };
    ws.onclose = () => {
      if (ws === this.#ws) void this.#reconnect();
    };
    ws.onerror = null;
    for (const message of this.#queue.splice(0)) ws.send(JSON.stringify(message));
  }

  #dispatch(message: ServerMessage): void {
    if (message.type === "mls") this.#mlsSeq = Math.max(this.#mlsSeq, message.seq);
    if (message.type === "closed") this.#shutdown();
    try {
      this.#handlers?.message(message);
    } catch (error) {
      // A message with the right type but the wrong shape: drop it, keep reading.
      console.warn(`server ${message.type} message could not be handled`, error);
    }
  }

  #keepalive(interval: number): void {
    if (this.#closed) return;
    const ws = this.#ws;
    if (ws === undefined) return;
    if (Date.now() - this.#lastHeard > 3 * interval) {
      // The server went silent: treat the connection as lost.
      ws.onclose = null;
      ws.close();
      void this.#reconnect();
      return;
    }
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "ping", ts: Date.now() - this.#started } satisfies ClientMessage));
    }
  }

  /** Reconnects and resumes within the window, with backoff. */
  async #reconnect(): Promise<void> {
    if (this.#closed) return;
    this.#ws = undefined;
    const window = this.#options.reconnectWindowMs;
    if (window <= 0) return this.#lose(false);
    this.#handlers?.reconnecting();
    const deadline = Date.now() + window;
    let backoff = 50;
    while (!this.#closed) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return this.#lose(false);
      const join: ClientMessage = {
        type: "join",
        protocol: PROTOCOL_VERSION,
        token: this.#token,
        resume: {
          participant_id: this.participantId,
          resume_token: this.#resumeToken,
          mls_seq: this.#mlsSeq,
        },
      };
      try {
        const { ws, reply } = await openAndJoin(
          this.#url,
          join,
          Math.min(this.#options.connectTimeoutMs, remaining),
        );
        if (this.#closed) {
          ws.close();
          return;
        }
        if (reply.type !== "resumed") {
          ws.close();
          return this.#lose(true);
        }
        this.#attach(ws);
        this.#handlers?.resumed(reply.room, reply.mls);
        return;
      } catch (error) {
        const refused =
          error instanceof ConnectError &&
          (error.code === "resume_failed" || error.kind === "unauthorized");
        if (refused) return this.#lose(true);
      }
      await new Promise((r) => setTimeout(r, Math.min(backoff, Math.max(remaining, 0))));
      backoff = Math.min(backoff * 2, 1_000);
    }
  }

  #lose(serverRefused: boolean): void {
    if (this.#closed) return;
    this.#shutdown();
    this.#handlers?.lost(serverRefused);
  }
}
