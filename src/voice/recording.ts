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

interface Chunk {
  /** Offset in samples from the transport's start. */
  at: number;
  pcm: Int16Array;
}

/** One channel as chunks with their offsets: nothing is assembled until the call ends. */
class Track {
  readonly chunks: Chunk[] = [];
  /** Sample after the last chunk added (where a continuous next frame starts). */
  private lastEnd = 0;
  /** Sample after the latest-ending chunk: the channel's length. */
  length = 0;

  constructor(private readonly sampleRate: number) {}

  add(frame: AudioFrame): void {
    if (!frame.pcm.length || !Number.isFinite(frame.timestampMs)) return;
    // A copy: a transport may reuse its buffers, and a subarray would keep a whole utterance's buffer alive.
    let pcm = frame.sampleRate === this.sampleRate ? frame.pcm.slice() : resample(frame.pcm, frame.sampleRate, this.sampleRate);
    let at = Math.round((frame.timestampMs * this.sampleRate) / 1000);
    if (this.chunks.length && Math.abs(at - this.lastEnd) <= (CONTINUITY_MS * this.sampleRate) / 1000) at = this.lastEnd;
    if (at < 0) {
      pcm = pcm.subarray(-at);
      at = 0;
    }
    if (!pcm.length) return;
    this.chunks.push({ at, pcm });
    this.lastEnd = at + pcm.length;
    this.length = Math.max(this.length, this.lastEnd);
  }
}

export interface Recording {
  /** RIFF/WAVE, PCM 16-bit little-endian, 2 channels (caller left, agent right). */
  wav: Buffer;
  durationMs: number;
}

/** The two channels of one call at one sample rate. */
export class CallRecorder {
  private readonly caller: Track;
  private readonly agent: Track;

  constructor(readonly sampleRate: number) {
    this.caller = new Track(sampleRate);
    this.agent = new Track(sampleRate);
  }

  addCaller(frame: AudioFrame): void {
    this.caller.add(frame);
  }

  addAgent(frame: AudioFrame): void {
    this.agent.add(frame);
  }

  /** Both channels as one stereo WAV; gaps are silence, and where frames overlap the later one wins. */
  finish(): Recording {
    const frames = Math.max(this.caller.length, this.agent.length);
    const wav = Buffer.alloc(44 + frames * 4);
    writeHeader(wav, this.sampleRate, frames);
    // Samples are written through an Int16Array view (native order) and swapped once on big-endian machines.
    const samples = new Int16Array(wav.buffer, wav.byteOffset + 44, frames * 2);
    for (const [channel, track] of [this.caller, this.agent].entries()) {
      for (const { at, pcm } of track.chunks) {
        for (let i = 0; i < pcm.length; i++) samples[(at + i) * 2 + channel] = pcm[i]!;
      }
    }
    if (!LITTLE_ENDIAN) wav.subarray(44).swap16();
    return { wav, durationMs: Math.round((frames * 1000) / this.sampleRate) };
  }
}

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
  finish(): Recording;
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
    audio: () => ({
      async *[Symbol.asyncIterator]() {
        for await (const frame of transport.audio()) {
          recorder.addCaller(frame);
          yield frame;
        }
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
