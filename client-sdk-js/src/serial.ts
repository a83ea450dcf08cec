/**
 * Runs async steps one at a time, in the order they were queued: SDP steps
 * on one RTCPeerConnection must not interleave.
 *
 * @module
 */

/** A queue of async steps run one after another. */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();

  /** Queues `step`; resolves or rejects with its result. */
  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(step, step);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
