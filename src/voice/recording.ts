// Call recording: a Transport wrapper that copies the caller's frames (left channel) and the agent's audio as the
// caller heard it (right channel) into a 16-bit stereo WAV, both placed by their timestamps on the transport's clock.
import { type FileHandle, open, rm } from 'node:fs/promises';
import { type AudioFrame, resample } from './audio.js';
import type { Transport } from './transports/transport.js';

/**
 * A frame starting this close to where the channel's previous frame ended is taken as its continuation: clocks
 * jitter by a fraction of a ms, and placing each frame exactly would leave a gap or an overlap of a few samples
 * (an audible click) at every frame edge.
 */
const CONTINUITY_MS = 2;

/**
 * How far behind the newest audio a second of the recording is written to its file and dropped from memory. Frames
 * arrive in time order give or take a few frames, so five seconds leaves late frames ample room; one arriving even
 * later than that is left out (its second is already on disk). Memory per call stays about this many seconds of
 * audio however long the call runs (it was all of it: 2 MB a minute at 8 kHz).
 */
const WINDOW_S = 5;

/**
 * One channel of the seconds not yet written out, in blocks of one second allocated as audio reaches them: a frame
 * is copied into place when it arrives (one memcpy; writing it interleaved, sample by sample, cost the event loop
 * several times as much at a few hundred calls), and a block is interleaved with the other channel's once, when
 * it is written out.
 */
class Blocks {
  private readonly blocks = new Map<number, Int16Array>();
  /**
   * Blocks written out, zeroed for reuse: a call's recording allocates its few blocks once. (A new block a second
   * per channel lives long enough to reach the old generation, garbage that only a full collection frees.)
   */
  private readonly spare: Int16Array[] = [];
  /** Samples up to the end of the latest-ending audio. */
  length = 0;
  /** Samples before this are written out: audio for them comes too late and is dropped. */
  writtenUpTo = 0;

  constructor(private readonly blockSize: number) {}

  /** Writes `pcm` from sample `at`; where audio was already written, this replaces it. */
  write(at: number, pcm: Int16Array): void {
    let done = Math.max(0, this.writtenUpTo - at);
    while (done < pcm.length) {
      const pos = at + done;
      const index = Math.floor(pos / this.blockSize);
      let block = this.blocks.get(index);
      if (!block) this.blocks.set(index, (block = this.spare.pop() ?? new Int16Array(this.blockSize)));
      const offset = pos - index * this.blockSize;
      const n = Math.min(pcm.length - done, this.blockSize - offset);
      block.set(pcm.subarray(done, done + n), offset);
      done += n;
    }
    this.length = Math.max(this.length, at + pcm.length);
  }

  /** Block `index`, or null where no audio reached it (silence), and forgets it: it is being written out. */
  take(index: number): Int16Array | null {
    const block = this.blocks.get(index) ?? null;
    this.blocks.delete(index);
    this.writtenUpTo = (index + 1) * this.blockSize;
    return block;
  }

  /** A block from take(), once its samples have been copied out. */
  recycle(block: Int16Array): void {
    block.fill(0);
    this.spare.push(block);
  }
}

/**
 * Interleaves n samples of both channels into `out` (one left/right pair per element, as a little-endian machine
 * lays them out).
 */
function interleave(out: Int32Array, left: Int16Array, right: Int16Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = (left[i]! & 0xffff) | (right[i]! << 16);
}

/** One channel's placement: where its next continuous frame starts. */
class Track {
  /** Sample after the last frame added (where a continuous next frame starts); -1 before the first. */
  private lastEnd = -1;

  constructor(
    private readonly sampleRate: number,
    private readonly out: Blocks,
  ) {}

  add(frame: AudioFrame): void {
    if (!frame.pcm.length || !Number.isFinite(frame.timestampMs)) return;
    let pcm = frame.sampleRate === this.sampleRate ? frame.pcm : resample(frame.pcm, frame.sampleRate, this.sampleRate);
    let at = Math.round((frame.timestampMs * this.sampleRate) / 1000);
    if (this.lastEnd >= 0 && Math.abs(at - this.lastEnd) <= (CONTINUITY_MS * this.sampleRate) / 1000) at = this.lastEnd;
    if (at < 0) {
      pcm = pcm.subarray(-at);
      at = 0;
    }
    if (!pcm.length) return;
    // Copied into place now: the transport may reuse the frame's buffer.
    this.out.write(at, pcm);
    this.lastEnd = at + pcm.length;
  }
}

export interface Recording {
  /** The WAV file: RIFF/WAVE, PCM 16-bit little-endian, 2 channels (caller left, agent right). */
  file: string;
  bytes: number;
  durationMs: number;
}

/**
 * The two channels of one call at one sample rate, written to a WAV file as the call goes: each second once it is
 * WINDOW_S behind the newest audio, the rest and the header when the call ends.
 */
export class CallRecorder {
  private readonly left: Blocks;
  private readonly right: Blocks;
  private readonly caller: Track;
  private readonly agent: Track;
  private readonly blockSize: number;
  /** Blocks written out (or being written): block i is bytes 44 + i * blockSize * 4 of the file. */
  private written = 0;
  /** Write buffers of one whole second, back from the file once written (see Blocks.spare). */
  private readonly spareData: Buffer[] = [];
  private silence: Int16Array | undefined;
  private handle: Promise<FileHandle> | undefined;
  /** Writes in the order made; the first failure is kept and reported by finish(). */
  private writing: Promise<void> = Promise.resolve();
  private failure: unknown;
  private finished = false;

  /** `file` is created (or truncated) with the first second written out. */
  constructor(
    readonly sampleRate: number,
    readonly file: string,
  ) {
    this.blockSize = sampleRate;
    this.left = new Blocks(this.blockSize);
    this.right = new Blocks(this.blockSize);
    this.caller = new Track(sampleRate, this.left);
    this.agent = new Track(sampleRate, this.right);
  }

  addCaller(frame: AudioFrame): void {
    if (this.finished) return;
    this.caller.add(frame);
    this.writeOut();
  }

  addAgent(frame: AudioFrame): void {
    if (this.finished) return;
    this.agent.add(frame);
    this.writeOut();
  }

  /**
   * Writes the rest and the header, closes the file and says what it holds (a call with no audio is a WAV with
   * no samples); no audio is taken after this. The rest is interleaved a few seconds at a time with a turn of the
   * event loop between (at once, a long call held up the other calls' audio by several ms). If the file could not
   * be written, it is removed and this rejects.
   */
  async finish(): Promise<Recording> {
    this.finished = true;
    const frames = Math.max(this.left.length, this.right.length);
    for (let n = 0; this.written * this.blockSize < frames; n++) {
      if (n > 0 && n % SECONDS_PER_SLICE === 0) await new Promise((r) => setImmediate(r));
      this.writeBlock(Math.min(this.blockSize, frames - this.written * this.blockSize));
    }
    const header = Buffer.alloc(44);
    writeHeader(header, this.sampleRate, frames);
    this.append(header, 0);
    await this.writing;
    await this.handle?.then((h) => h.close()).catch((err: unknown) => (this.failure ??= err));
    if (this.failure !== undefined) {
      await rm(this.file, { force: true });
      throw this.failure;
    }
    return { file: this.file, bytes: 44 + frames * 4, durationMs: Math.round((frames * 1000) / this.sampleRate) };
  }

  /** Writes out the seconds that are WINDOW_S behind the newest audio. */
  private writeOut(): void {
    const head = Math.max(this.left.length, this.right.length);
    while ((this.written + 1 + WINDOW_S) * this.blockSize <= head) this.writeBlock(this.blockSize);
  }

  /** Interleaves the next block's first n samples of both channels and appends them to the file. */
  private writeBlock(n: number): void {
    const index = this.written++;
    const left = this.left.take(index);
    const right = this.right.take(index);
    // Buffer.allocUnsafeSlow is not pooled: its offset is 0, so the Int32Array view is aligned. Every sample is
    // written (silence too), so it need not be zeroed.
    const data = (n === this.blockSize && this.spareData.pop()) || Buffer.allocUnsafeSlow(n * 4);
    if (!left || !right) this.silence ??= new Int16Array(this.blockSize);
    interleave(new Int32Array(data.buffer, data.byteOffset, n), left ?? this.silence!, right ?? this.silence!, n);
    if (left) this.left.recycle(left);
    if (right) this.right.recycle(right);
    // On a big-endian machine one 32-bit swap per frame gives the WAV's little-endian order.
    if (!LITTLE_ENDIAN) data.swap32();
    this.append(data, 44 + index * this.blockSize * 4);
  }

  private append(data: Buffer, position: number): void {
    this.handle ??= open(this.file, 'w', 0o600);
    const handle = this.handle;
    this.writing = this.writing.then(async () => {
      if (this.failure !== undefined) return;
      try {
        const h = await handle;
        await h.write(data, 0, data.length, position);
        if (data.length === this.blockSize * 4) this.spareData.push(data);
      } catch (err) {
        this.failure ??= err;
      }
    });
  }
}

/** Seconds of a recording interleaved between two turns of the event loop (about 0.5 ms of work on 2 cores). */
const SECONDS_PER_SLICE = 4;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function writeHeader(b: Buffer, sampleRate: number, frames: number): void {
  const channels = 2;
  const dataBytes = frames * channels * 2;
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(36 + dataBytes, 4);
  b.write('WAVE', 8, 'latin1');
  b.write('fmt ', 12, 'latin1');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20); // PCM
  b.writeUInt16LE(channels, 22);
  b.writeUInt32LE(sampleRate, 24);
  b.writeUInt32LE(sampleRate * channels * 2, 28);
  b.writeUInt16LE(channels * 2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'latin1');
  b.writeUInt32LE(dataBytes, 40);
}

export interface RecordedTransport {
  /** Use this one for the call: everything passes through to the real transport. */
  transport: Transport;
  /** Ends the recording (normally once the call is over): the file is complete when this resolves. */
  finish(): Promise<Recording>;
}

export interface RecordOptions {
  /** The WAV file the recording is written to as the call goes (see CallRecorder). */
  file: string;
  /**
   * Runs once the real transport has closed, before close() resolves: the session writes the call's end after
   * closing its transport, so a recording stored here is in place when the call is reported ended.
   */
  onClose?: () => Promise<void>;
}

/** Records the call passing through `transport`: caller frames as they are read, agent audio as it is played. */
export function recordTransport(transport: Transport, opts: RecordOptions): RecordedTransport {
  const recorder = new CallRecorder(transport.sampleRate, opts.file);
  let closing: Promise<void> | undefined;
  // onPlayed only reports what was heard, so audio dropped by clear() (barge-in) never reaches the recording.
  transport.onPlayed((frame) => recorder.addAgent(frame));
  const recorded: Transport = {
    get kind() {
      return transport.kind;
    },
    get sampleRate() {
      return transport.sampleRate;
    },
    // The caller's frames are copied as the session reads them. A plain iterator rather than an async generator:
    // this runs for every 20 ms frame of every call, and a generator adds promises and a turn to each.
    audio: () => ({
      [Symbol.asyncIterator]() {
        const frames = transport.audio()[Symbol.asyncIterator]();
        return {
          next: () =>
            frames.next().then((r) => {
              if (!r.done) recorder.addCaller(r.value);
              return r;
            }),
          return: async (value?: unknown) => (frames.return ? frames.return(value) : { done: true as const, value }),
        };
      },
    }),
    send: (frame) => transport.send(frame),
    mark: (name) => transport.mark(name),
    clear: () => transport.clear(),
    onDtmf: (listener) => transport.onDtmf(listener),
    onHangup: (listener) => transport.onHangup(listener),
    onPlayed: (listener) => transport.onPlayed(listener),
    close: async (reason) => {
      try {
        await transport.close(reason);
      } finally {
        // Once, however often close() is called.
        closing ??= opts.onClose?.() ?? Promise.resolve();
        await closing;
      }
    },
  };
  return { transport: recorded, finish: () => recorder.finish() };
}
