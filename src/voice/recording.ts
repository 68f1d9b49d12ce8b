// Call recording: a Transport wrapper that copies the caller's frames (left channel) and the agent's audio as the
// caller heard it (right channel) into a 16-bit stereo WAV, both placed by their timestamps on the transport's clock.
import { type AudioFrame, resample } from './audio.js';
import type { Transport } from './transports/transport.js';

/**
 * A frame starting this close to where the channel's previous frame ended is taken as its continuation: clocks
 * jitter by a fraction of a ms, and placing each frame exactly would leave a gap or an overlap of a few samples
 * (an audible click) at every frame edge.
 */
const CONTINUITY_MS = 2;

/**
 * One channel in blocks of one second, allocated as audio reaches them: a frame is copied into place when it
 * arrives (one memcpy; writing it interleaved, sample by sample, cost the event loop several times as much at a few
 * hundred calls), and ending a call only interleaves the two channels' blocks into the WAV.
 */
class Blocks {
  private readonly blocks: Int16Array[] = [];
  /** Samples up to the end of the latest-ending audio. */
  length = 0;

  constructor(private readonly blockSize: number) {}

  /** Writes `pcm` from sample `at`; where audio was already written, this replaces it. */
  write(at: number, pcm: Int16Array): void {
    let done = 0;
    while (done < pcm.length) {
      const pos = at + done;
      const index = Math.floor(pos / this.blockSize);
      const block = (this.blocks[index] ??= new Int16Array(this.blockSize));
      const offset = pos - index * this.blockSize;
      const n = Math.min(pcm.length - done, this.blockSize - offset);
      block.set(pcm.subarray(done, done + n), offset);
      done += n;
    }
    this.length = Math.max(this.length, at + pcm.length);
  }

  /** Block `index` of this channel, or null where no audio reached it (silence). */
  block(index: number): Int16Array | null {
    return this.blocks[index] ?? null;
  }
}

/**
 * Interleaves samples [start, start + n) of both channels into `out` (one left/right pair per element, as a
 * little-endian machine lays them out).
 */
function interleave(out: Int32Array, left: Int16Array, right: Int16Array, start: number, n: number): void {
  for (let i = 0; i < n; i++) out[start + i] = (left[i]! & 0xffff) | (right[i]! << 16);
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
  /** RIFF/WAVE, PCM 16-bit little-endian, 2 channels (caller left, agent right). */
  wav: Buffer;
  durationMs: number;
}

/** The two channels of one call at one sample rate. */
export class CallRecorder {
  private readonly left: Blocks;
  private readonly right: Blocks;
  private readonly caller: Track;
  private readonly agent: Track;

  constructor(readonly sampleRate: number) {
    this.left = new Blocks(sampleRate);
    this.right = new Blocks(sampleRate);
    this.caller = new Track(sampleRate, this.left);
    this.agent = new Track(sampleRate, this.right);
  }

  addCaller(frame: AudioFrame): void {
    this.caller.add(frame);
  }

  addAgent(frame: AudioFrame): void {
    this.agent.add(frame);
  }

  /**
   * Both channels as one stereo WAV; gaps are silence, and where frames overlap the later one wins. The WAV is
   * built a few seconds at a time with a turn of the event loop between: a long call took 5 to 10 ms at once, and
   * calls ending together held up the other calls' audio for tens of ms.
   */
  async finish(): Promise<Recording> {
    const frames = Math.max(this.left.length, this.right.length);
    // Every sample is written below, so the buffer need not be zeroed first.
    const wav = Buffer.allocUnsafeSlow(44 + frames * 4);
    writeHeader(wav, this.sampleRate, frames);
    // One stereo frame per element (left in the low half): Buffer.allocUnsafeSlow is not pooled, so offset 44 is
    // 4-byte aligned. On a big-endian machine one 32-bit swap per frame gives the WAV's little-endian order.
    const out = new Int32Array(wav.buffer, wav.byteOffset + 44, frames);
    const blockSize = this.sampleRate;
    const silence = new Int16Array(blockSize);
    for (let index = 0; index * blockSize < frames; index++) {
      if (index > 0 && index % SECONDS_PER_SLICE === 0) await new Promise((r) => setImmediate(r));
      const start = index * blockSize;
      interleave(out, this.left.block(index) ?? silence, this.right.block(index) ?? silence, start, Math.min(blockSize, frames - start));
    }
    if (!LITTLE_ENDIAN) wav.subarray(44).swap32();
    return { wav, durationMs: Math.round((frames * 1000) / this.sampleRate) };
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
  /** The recording so far (normally called once the call is over). */
  finish(): Promise<Recording>;
}

export interface RecordOptions {
  /**
   * Runs once the real transport has closed, before close() resolves: the session writes the call's end after
   * closing its transport, so a recording stored here is in place when the call is reported ended.
   */
  onClose?: () => Promise<void>;
}

/** Records the call passing through `transport`: caller frames as they are read, agent audio as it is played. */
export function recordTransport(transport: Transport, opts: RecordOptions = {}): RecordedTransport {
  const recorder = new CallRecorder(transport.sampleRate);
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
