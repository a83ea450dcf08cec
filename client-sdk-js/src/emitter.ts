/**
 * A small typed event emitter: `on(name, listener)` returns the function
 * that removes the listener. A listener that throws does not stop the
 * others; the exception is reported on the console.
 *
 * @module
 */

/** Listener signature for event `K` of map `M`. */
export type Listener<M, K extends keyof M> = (payload: M[K]) => void;

/** Emits the events of map `M` (event name → payload type). */
export class Emitter<M> {
  readonly #listeners = new Map<keyof M, Set<Listener<M, keyof M>>>();

  /** Calls `listener` on every `name` event until the returned function is called. */
  on<K extends keyof M>(name: K, listener: Listener<M, K>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener as Listener<M, keyof M>);
    return () => this.off(name, listener);
  }

  /** Removes a listener added with {@link on}. */
  off<K extends keyof M>(name: K, listener: Listener<M, K>): void {
    this.#listeners.get(name)?.delete(listener as Listener<M, keyof M>);
  }

  /**
   * Resolves with the next `name` event whose payload passes `filter`, or
   * rejects after `timeoutMs` (no limit when omitted).
   */
  next<K extends keyof M>(
    name: K,
    options: { filter?: (payload: M[K]) => boolean; timeoutMs?: number } = {},
  ): Promise<M[K]> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stop = this.on(name, (payload) => {
        if (options.filter !== undefined && !options.filter(payload)) return;
        stop();
        if (timer !== undefined) clearTimeout(timer);
        resolve(payload);
      });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          stop();
          reject(new Error(`no ${String(name)} event within ${options.timeoutMs} ms`));
        }, options.timeoutMs);
      }
    });
  }

  /** Calls every listener of `name` with `payload`. */
  protected emit<K extends keyof M>(name: K, payload: M[K]): void {
    for (const listener of [...(this.#listeners.get(name) ?? [])]) {
      try {
        listener(payload);
      } catch (error) {
        console.error(`listener for ${String(name)} threw`, error);
      }
    }
  }
}
