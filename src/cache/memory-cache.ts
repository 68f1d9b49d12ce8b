// In-process Cache for a single instance (the embedded default).
import type { Cache, WindowCount } from './cache.js';

export class MemoryCache implements Cache {
  private readonly windows = new Map<string, { count: number; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly channels = new Map<string, ((message: string) => void)[]>();

  constructor() {
    // Expired windows are dropped once a minute so memory does not grow with every client ever seen.
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, w] of this.windows) if (w.expiresAt <= now) this.windows.delete(k);
    }, 60_000);
    this.sweeper.unref();
  }

  async hitWindow(key: string, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || w.expiresAt <= now) {
      w = { count: 0, expiresAt: now + windowMs };
      this.windows.set(key, w);
    }
    w.count += 1;
    return { count: w.count, resetMs: w.expiresAt - now };
  }

  async peekWindow(key: string): Promise<WindowCount> {
    const now = Date.now();
    const w = this.windows.get(key);
    return w && w.expiresAt > now ? { count: w.count, resetMs: w.expiresAt - now } : { count: 0, resetMs: 0 };
  }

  async publish(channel: string, message: string): Promise<void> {
    // Delivered on a later tick, as Redis would: a publisher never runs its subscribers inside its own call.
    for (const handler of this.channels.get(channel) ?? []) setImmediate(() => handler(message));
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    this.channels.set(channel, [...(this.channels.get(channel) ?? []), handler]);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.windows.clear();
    this.channels.clear();
  }
}
