// The wire between the service and its media process (media-process.ts, media-child.ts): typed messages, sent in
// batches. Everything either side has to say within one turn of its event loop goes as one IPC message, the audio of
// all its frames in one buffer: at 150 calls that is one message each way per loop turn instead of 7,500 a second.
// Node's advanced serialization carries typed arrays as their bytes.
import type { Recording } from '../voice/recording.js';
import type { TwilioStart } from '../voice/transports/twilio-media-stream.js';

/** The service's side to the media process, about one stream (`id`, the media process's number for it). */
export type ToMedia =
  /** The answer to `start`: whether the stream may run (false closes it with 1008). */
  | { k: 'auth'; id: number; ok: boolean; error?: boolean }
  /** Agent audio (its samples in the batch's pcm at `at`, `n` long). */
  | { k: 'send'; id: number; at: number; n: number; ts: number }
  | { k: 'mark'; id: number; mark: number; name: string }
  | { k: 'clear'; id: number }
  /** From now on, send the agent audio back as it is played (`played`): someone listens to it. */
  | { k: 'played-on'; id: number }
  /** Record the stream there, into `file` (a CallRecorder: `offsetMs` places the stream's time 0 on the call's clock). */
  | { k: 'record'; id: number; file: string; offsetMs: number }
  /** Finish that recording (the stream may be closed already): the answer is `recorded`. */
  | { k: 'record-end'; id: number }
  | { k: 'close'; id: number; reason: string };

/** The media process's side to the service. */
export type FromMedia =
  /** A stream's `start` message arrived: the service checks its token and answers with `auth`. */
  | { k: 'start'; id: number; start: TwilioStart }
  /** The stream runs; `startedAt` (ms since the epoch, sub-ms) is the origin of its frames' timestamps. */
  | { k: 'accepted'; id: number; startedAt: number }
  /** The stream never ran (refused, timed out, or gone before it was accepted). */
  | { k: 'gone'; id: number }
  /** Caller audio. */
  | { k: 'audio'; id: number; at: number; n: number; ts: number }
  /** Agent audio as the caller heard it. */
  | { k: 'played'; id: number; at: number; n: number; ts: number }
  | { k: 'mark'; id: number; mark: number; played: boolean }
  | { k: 'dtmf'; id: number; digit: string }
  | { k: 'hangup'; id: number; violation?: string }
  | { k: 'closed'; id: number }
  /** The stream's recording, finished (or why it could not be written). */
  | { k: 'recorded'; id: number; recording?: Recording; error?: string }
  /** Time between two media messages of an utterance as sent (the operator's frame-gap metric). */
  | { k: 'gap'; ms: number };

/** What goes over the IPC channel: the items and one buffer holding the samples they point into. */
export interface Batch<T> {
  items: T[];
  pcm: Int16Array;
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

/** Where a batch item's samples are in the batch's buffer. */
type WithAudio = { at: number; n: number };

/** Collects what one side says during a turn of its event loop and sends it as one batch (setImmediate). */
export class Batcher<T extends object> {
  private items: T[] = [];
  private chunks: Int16Array[] = [];
  private samples = 0;
  private scheduled = false;

  constructor(private readonly post: (batch: Batch<T>) => void) {}

  add(item: T): void {
    this.items.push(item);
    this.schedule();
  }

  /** An item with samples (its `at` and `n` are set here): copied into the batch's buffer at send time. */
  audio(item: T & WithAudio, pcm: Int16Array): void {
    item.at = this.samples;
    item.n = pcm.length;
    this.items.push(item);
    this.chunks.push(pcm);
    this.samples += pcm.length;
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
    const items = this.items;
    this.items = [];
    this.chunks = [];
    this.samples = 0;
    this.post({ items, pcm });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }
}
