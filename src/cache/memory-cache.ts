// In-process Cache for a single instance (the embedded default).
import type { Cache, WindowCount } from './cache.js';

export class MemoryCache implements Cache {
  private readonly windows = new Map<string, { count: number; expiresAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

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

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.windows.clear();
  }
}
