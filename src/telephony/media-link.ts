// The wire between the service and its media process (media-process.ts, media-child.ts): typed messages, sent in
// batches. Everything either side has to say within one turn of its event loop goes as one IPC message, the audio of
// all its frames in one buffer: at 150 calls that is one message each way per loop turn instead of 7,500 a second.
// Node's advanced serialization carries typed arrays as their bytes. The items that come with every frame (audio
// either way, a frame gap) are not objects but a code in the item list and their numbers in one Float64Array: V8
// serializes, and the other side allocates, an object per item with its keys spelled out: about 20,000 a second at
// 150 calls.
import type { TwilioStart } from '../voice/transports/twilio-media-stream.js';

/** The service's side to the media process, about one stream (`id`, the media process's number for it). */
export type ToMedia =
  /** The answer to `start`: whether the stream may run (false closes it with 1008). */
  | { k: 'auth'; id: number; ok: boolean; error?: boolean }
  | { k: 'mark'; id: number; mark: number; name: string }
  | { k: 'clear'; id: number }
  /** From now on, send the agent audio back as it is played (`played`): someone records it. */
  | { k: 'played-on'; id: number }
  | { k: 'close'; id: number; reason: string };

/** The media process's side to the service. */
export type FromMedia =
  /** A stream's `start` message arrived: the service checks its token and answers with `auth`. */
  | { k: 'start'; id: number; start: TwilioStart }
  /** The stream runs; `startedAt` (ms since the epoch, sub-ms) is the origin of its frames' timestamps. */
  | { k: 'accepted'; id: number; startedAt: number }
  /** The stream never ran (refused, timed out, or gone before it was accepted). */
  | { k: 'gone'; id: number }
  | { k: 'mark'; id: number; mark: number; played: boolean }
  | { k: 'dtmf'; id: number; digit: string }
  | { k: 'hangup'; id: number; violation?: string }
  | { k: 'closed'; id: number };

/** The items sent as numbers (Batch.items holds the code): audio is a stream's id, its timestamp and its samples. */
export const AUDIO = {
  /** Agent audio, to the media process. */
  send: 0,
  /** Caller audio, from it. */
  caller: 1,
  /** Agent audio as the caller heard it, from it (once `played-on`). */
  played: 2,
} as const;
export type AudioCode = (typeof AUDIO)[keyof typeof AUDIO];
/** Time between two media messages of an utterance as sent (the operator's frame-gap metric), from the media process. */
export const GAP = 3;

/**
 * What goes over the IPC channel: the items in order, each an object or a code; the codes' numbers in order (audio:
 * id, timestamp, sample count; a gap: its ms); and one buffer holding the audio items' samples in order.
 */
export interface Batch<T> {
  items: (T | number)[];
  numbers: Float64Array;
  pcm: Int16Array;
}

/** What a batch's reader does with each kind of item. */
export interface BatchReader<T> {
  item(item: T): void;
  audio(code: AudioCode, id: number, timestampMs: number, pcm: Int16Array): void;
  gap?(ms: number): void;
}

/** Calls `reader` for each item of `batch`, in order. */
export function readBatch<T>(batch: Batch<T>, reader: BatchReader<T>): void {
  const { numbers, pcm } = batch;
  let n = 0;
  let at = 0;
  for (const item of batch.items) {
    if (typeof item !== 'number') reader.item(item);
    else if (item === GAP) reader.gap?.(numbers[n++]!);
    else {
      const id = numbers[n]!;
      const ts = numbers[n + 1]!;
      const length = numbers[n + 2]!;
      n += 3;
      reader.audio(item as AudioCode, id, ts, pcm.subarray(at, at + length));
      at += length;
    }
  }
}

/** The hand-over of a websocket's upgrade request, its socket the message's handle. */
export interface Upgrade {
  k: 'upgrade';
  id: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Bytes read past the request's head (the first websocket frames, if the peer did not wait). */
  head: Uint8Array;
}

/** Collects what one side says during a turn of its event loop and sends it as one batch (setImmediate). */
export class Batcher<T extends object> {
  private items: (T | number)[] = [];
  private numbers: number[] = [];
  private chunks: Int16Array[] = [];
  private samples = 0;
  private scheduled = false;

  constructor(private readonly post: (batch: Batch<T>) => void) {}

  add(item: T): void {
    this.items.push(item);
    this.schedule();
  }

  /** A frame of a stream's audio: its samples are copied into the batch's buffer at send time. */
  audio(code: AudioCode, id: number, timestampMs: number, pcm: Int16Array): void {
    this.items.push(code);
    this.numbers.push(id, timestampMs, pcm.length);
    this.chunks.push(pcm);
    this.samples += pcm.length;
    this.schedule();
  }

  gap(ms: number): void {
    this.items.push(GAP);
    this.numbers.push(ms);
    this.schedule();
  }

  /** Sends now what has been collected (also what the scheduled flush does). */
  flush(): void {
    this.scheduled = false;
    if (!this.items.length) return;
    const pcm = new Int16Array(this.samples);
    let at = 0;
    for (const c of this.chunks) {
      pcm.set(c, at);
      at += c.length;
    }
    const batch: Batch<T> = { items: this.items, numbers: Float64Array.from(this.numbers), pcm };
    this.items = [];
    this.numbers = [];
    this.chunks = [];
    this.samples = 0;
    this.post(batch);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }
}
