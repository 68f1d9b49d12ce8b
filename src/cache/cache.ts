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
  /** The counter's current window without adding a hit (count 0 when there is none). */
  peekWindow(key: string): Promise<WindowCount>;
  /** Delivers a message to every subscriber of the channel, on every instance (fire and forget). */
  publish(channel: string, message: string): Promise<void>;
  /** Calls `handler` for each message published on the channel from now on, by any instance. */
  subscribe(channel: string, handler: (message: string) => void): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
