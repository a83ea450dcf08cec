/**
 * Audio levels, computed in the page: one WebAudio analyser per audio track
 * (remote tracks arrive decrypted, so the page hears them like any other
 * audio). The loudest track above a floor is the active speaker; it stays
 * so for a short hold, so the highlight does not flicker between words.
 *
 * @module
 */

/** Below this RMS level (about -46 dBFS) nobody is speaking. */
const SPEAKING_RMS = 0.005;
/** How long the last speaker keeps the highlight after falling silent. */
const HOLD_MS = 1_200;
const TICK_MS = 150;

interface Source {
  track: MediaStreamTrack;
  node: MediaStreamAudioSourceNode;
  analyser: AnalyserNode;
  buffer: Float32Array<ArrayBuffer>;
  level: number;
}

/** Levels of a set of audio tracks, by key, and which one speaks. */
export class AudioLevels {
  readonly #ctx: AudioContext;
  readonly #sources = new Map<string, Source>();
  readonly #timer: ReturnType<typeof setInterval>;
  #speaker: string | undefined;
  #speakerSince = 0;
  /** Called when the active speaker changes (undefined: nobody). */
  onSpeaker: (key: string | undefined) => void = () => {};
  /** Called every tick with each key's level (0..1). */
  onLevels: (levels: ReadonlyMap<string, number>) => void = () => {};

  constructor(ctx: AudioContext) {
    this.#ctx = ctx;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Starts measuring `track` as `key` (replacing what `key` measured, unless the same track). */
  add(key: string, track: MediaStreamTrack): void {
    if (this.#sources.get(key)?.track === track) return;
    this.remove(key);
    const node = this.#ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = this.#ctx.createAnalyser();
    analyser.fftSize = 512;
    node.connect(analyser);
    this.#sources.set(key, { track, node, analyser, buffer: new Float32Array(analyser.fftSize), level: 0 });
  }

  /** Stops measuring `key`. */
  remove(key: string): void {
    const s = this.#sources.get(key);
    if (s === undefined) return;
    s.node.disconnect();
    this.#sources.delete(key);
    if (this.#speaker === key) this.#setSpeaker(undefined);
  }

  /** Stops everything. */
  close(): void {
    clearInterval(this.#timer);
    for (const key of [...this.#sources.keys()]) this.remove(key);
  }

  #tick(): void {
    const levels = new Map<string, number>();
    let loudest: string | undefined;
    let max = SPEAKING_RMS;
    for (const [key, s] of this.#sources) {
      s.analyser.getFloatTimeDomainData(s.buffer);
      let sum = 0;
      for (const v of s.buffer) sum += v * v;
      const rms = Math.sqrt(sum / s.buffer.length);
      // Fast attack, slow release.
      s.level = rms > s.level ? rms : s.level * 0.7 + rms * 0.3;
      levels.set(key, Math.min(1, s.level * 8));
      if (s.level > max) {
        max = s.level;
        loudest = key;
      }
    }
    this.onLevels(levels);
    const now = performance.now();
    if (loudest !== undefined) {
      this.#speakerSince = now;
      if (loudest !== this.#speaker) this.#setSpeaker(loudest);
    } else if (this.#speaker !== undefined && now - this.#speakerSince > HOLD_MS) {
      this.#setSpeaker(undefined);
    }
  }

  #setSpeaker(key: string | undefined): void {
    this.#speaker = key;
    this.onSpeaker(key);
  }
}
