// Cache: what several instances must share. In-process by default, Redis when REDIS_URL is set.
export interface WindowCount {
  /** Hits in the current window, this one included. */
  count: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

export interface Cache {
  /** Adds one hit to a counter that lives windowMs from its first hit (a fixed-window rate counter). */
  hitWindow(key: string, windowMs: number): Promise<WindowCount>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
