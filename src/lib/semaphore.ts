// A counting semaphore: at most `size` holders at once, the others wait in order. Used to bound the local engine
// processes (espeak-ng) one instance runs, whatever the number of calls asking.

export class Semaphore {
  private held = 0;
  private readonly waiting: { grant: () => void; signal?: AbortSignal; onAbort?: () => void }[] = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new Error('a semaphore needs at least one slot');
  }

  /** Holders now. */
  get active(): number {
    return this.held;
  }

  /** Waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves with the release of a slot once one is free. An abort while waiting rejects with the signal's reason
   * and leaves the queue (a caller who interrupted does not wait for a sentence nobody will hear).
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.held < this.size) {
      this.held += 1;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const entry: (typeof this.waiting)[number] = { grant: () => resolve(this.releaser()), signal };
      if (signal) {
        entry.onAbort = () => {
          const i = this.waiting.indexOf(entry);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(signal.reason as Error);
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.waiting.push(entry);
    });
  }

  /** Runs `work` holding a slot. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (!next) {
        this.held -= 1;
        return;
      }
      // The slot passes straight to the next in line: held stays the same.
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.grant();
    };
  }
}
