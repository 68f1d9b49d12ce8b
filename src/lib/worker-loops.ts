// The background workers' loops (document ingestion, post-call analysis, webhook delivery): work until there is
// none, then sleep until the next poll or until woken by something queued in this process.

/** A sleep that `wake()` ends early. */
export class Waker {
  private waiting: (() => void)[] = [];
  private woken = false;

  /**
   * Ends every sleep now; with nobody asleep (the loop is busy looking), the next sleep returns at once instead:
   * what it was woken for may have been queued after the loop looked.
   */
  wake(): void {
    this.woken = true;
    const waiting = this.waiting;
    this.waiting = [];
    for (const done of waiting) done();
  }

  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiting.push(done);
    });
  }

  /** Forgets an earlier wake: called as a loop starts to look, since that look sees everything queued before it. */
  reset(): void {
    this.woken = false;
  }
}

/**
 * `concurrency` loops, each calling `work` (true: it did something, look again at once; false: nothing was due,
 * sleep `pollMs` or until woken) until stopped. An error is passed to `onError` and the loop goes on after a poll.
 */
export class WorkerLoops {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly waker = new Waker();

  constructor(
    private readonly work: () => Promise<boolean>,
    private readonly onError: (err: unknown) => void,
    private readonly pollMs: number,
  ) {}

  get isRunning(): boolean {
    return this.running;
  }

  start(concurrency: number): void {
    if (concurrency < 1 || this.running) return;
    this.running = true;
    for (let i = 0; i < concurrency; i++) this.loops.push(this.loop());
  }

  /** Starts no new round; waits for the rounds in progress (the caller aborts their work first). */
  async stop(): Promise<void> {
    this.running = false;
    this.waker.wake();
    await Promise.allSettled(this.loops);
    this.loops = [];
  }

  wake(): void {
    this.waker.wake();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let worked = false;
      this.waker.reset();
      try {
        worked = await this.work();
      } catch (err) {
        if (!this.running) return;
        this.onError(err);
      }
      if (!worked && this.running) await this.waker.sleep(this.pollMs);
    }
  }
}
