// An async queue: producers push, one consumer iterates with for-await until end() or fail(). A queue fed by
// someone outside the process (a caller's audio) is given a capacity: a consumer that falls behind then loses the
// newest items instead of the process holding whatever the producer sends.
export class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  /** Items refused because the queue was full. */
  dropped = 0;
  /** The consumer's pending next(), as its promise's two functions (no object per wait: one per item of a live call). */
  private waitingResolve: ((r: IteratorResult<T>) => void) | undefined;
  private waitingReject: ((err: unknown) => void) | undefined;
  private ended = false;
  private error: { err: unknown } | undefined;

  /** `capacity`: items held at most while the consumer is not reading (unbounded by default). */
  constructor(private readonly capacity = Infinity) {}

  /** False when the item was dropped: the queue is full (or ended). */
  push(item: T): boolean {
    if (this.ended) return false;
    if (this.waitingResolve) {
      const resolve = this.waitingResolve;
      this.waitingResolve = this.waitingReject = undefined;
      resolve({ value: item, done: false });
    } else if (this.items.length >= this.capacity) {
      this.dropped++;
      return false;
    } else {
      this.items.push(item);
    }
    return true;
  }

  /** Items waiting for the consumer. */
  get size(): number {
    return this.items.length;
  }

  end(): void {
    this.ended = true;
    const resolve = this.waitingResolve;
    this.waitingResolve = this.waitingReject = undefined;
    resolve?.({ value: undefined, done: true });
  }

  /** Ends the queue with an error: the consumer gets the items already pushed, then the error is thrown. */
  fail(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = { err };
    const reject = this.waitingReject;
    this.waitingResolve = this.waitingReject = undefined;
    reject?.(err);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const item = this.items.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.error) return Promise.reject(this.error.err);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waitingResolve = resolve;
          this.waitingReject = reject;
        });
      },
    };
  }
}
