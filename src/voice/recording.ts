// Call recording: a Transport wrapper that copies the caller's frames (left channel) and the agent's audio as the
// caller heard it (right channel) into a 16-bit stereo WAV, both placed by their timestamps on the call's clock;
// and the two ways a recording is put together from more than one run of the call (picked up again after a
// restart): a spool file left by a stopped process is recovered, and parts of one call are merged.
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
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
 * arrive in time order give or take a few frames (a stall of the event loop: hundreds of ms at worst), so two
 * seconds leave late frames ample room; one arriving even later than that is left out (its second is already on
 * disk). Memory per call stays about this many seconds of audio however long the call runs (it was all of it: 2 MB
 * a minute at 8 kHz), and a process that stops mid-call loses only these last seconds of its recording.
 */
const WINDOW_S = 2;

/**
 * How far past the call's wall time (the `until` clock of CallRecorder) audio is still taken: transports let a
 * caller run up to 1.5 s ahead of the wall clock (admission.ts), and a frame is a few ms long.
 */
export const RECORDING_SLACK_MS = 2000;

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
  /** The block written last, and its index (write's shortcut; undefined once taken). */
  private lastIndex = -1;
  private lastBlock: Int16Array | undefined;

  constructor(private readonly blockSize: number) {}

  /** Writes `pcm` from sample `at`; where audio was already written, this replaces it. */
  write(at: number, pcm: Int16Array): void {
    let done = Math.max(0, this.writtenUpTo - at);
    while (done < pcm.length) {
      const pos = at + done;
      const index = Math.floor(pos / this.blockSize);
      // The block of the previous frame, nearly always: no lookup.
      let block = index === this.lastIndex ? this.lastBlock : this.blocks.get(index);
      if (!block) this.blocks.set(index, (block = this.spare.pop() ?? new Int16Array(this.blockSize)));
      this.lastIndex = index;
      this.lastBlock = block;
      const offset = pos - index * this.blockSize;
      const n = Math.min(pcm.length - done, this.blockSize - offset);
      // A whole frame inside one block (nearly always) is copied without a view made of it.
      block.set(done === 0 && n === pcm.length ? pcm : pcm.subarray(done, done + n), offset);
      done += n;
    }
    this.length = Math.max(this.length, at + pcm.length);
  }

  /** Block `index`, or null where no audio reached it (silence), and forgets it: it is being written out. */
  take(index: number): Int16Array | null {
    const block = this.blocks.get(index) ?? null;
    this.blocks.delete(index);
    if (index === this.lastIndex) this.lastBlock = undefined;
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
    private readonly offsetMs: number,
  ) {}

  /** `limitMs`: the end of the recording on the transport's clock; audio past it is cut off. */
  add(frame: AudioFrame, limitMs: number): void {
    if (!frame.pcm.length || !Number.isFinite(frame.timestampMs)) return;
    let pcm = frame.sampleRate === this.sampleRate ? frame.pcm : resample(frame.pcm, frame.sampleRate, this.sampleRate);
    let at = Math.round(((frame.timestampMs + this.offsetMs) * this.sampleRate) / 1000);
    if (this.lastEnd >= 0 && Math.abs(at - this.lastEnd) <= (CONTINUITY_MS * this.sampleRate) / 1000) at = this.lastEnd;
    if (at < 0) {
      pcm = pcm.subarray(-at);
      at = 0;
    }
    // Never longer than the call: whatever a transport lets through, audio stamped past the wall clock is not kept.
    const limit = Math.floor(((limitMs + this.offsetMs) * this.sampleRate) / 1000);
    if (at + pcm.length > limit) pcm = pcm.subarray(0, Math.max(0, limit - at));
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
 * WINDOW_S behind the newest audio, the rest and the header when the call ends. The header is written first too,
 * with no length, so that a file left by a process that stopped says its format (recoverSpooledRecording).
 *
 * `offsetMs` places the transport's time 0 on the call's clock (the clock of the transcript's timestamps): a call
 * picked up again after a restart records from where it was, after the earlier part. The seconds before the first
 * audio are not written: they are a hole in the file (no disk used) that reads as silence.
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
  /** The file, opened when the first block is written out. */
  private fd: number | undefined;
  /** The first write that failed: nothing more is written, and finish() reports it. */
  private failure: unknown;
  private finished = false;
  /** Whether a block with audio has been written: silent blocks before it are skipped (see offsetMs). */
  private started = false;
  /** now() + RECORDING_SLACK_MS as last read (see limitFor). */
  private limitMs = -Infinity;

  /**
   * `file` is created (or truncated) when the first audio is written out. `now`: the transport's clock (ms since it
   * started, as frame timestamps): audio is taken up to now() + RECORDING_SLACK_MS, so the recording never
   * outgrows the call's wall time, which is what `max_duration` counts too.
   */
  constructor(
    readonly sampleRate: number,
    readonly file: string,
    offsetMs = 0,
    private readonly now: () => number = () => Infinity,
  ) {
    this.blockSize = sampleRate;
    this.left = new Blocks(this.blockSize);
    this.right = new Blocks(this.blockSize);
    this.caller = new Track(sampleRate, this.left, offsetMs);
    this.agent = new Track(sampleRate, this.right, offsetMs);
  }

  addCaller(frame: AudioFrame): void {
    if (this.finished) return;
    this.caller.add(frame, this.limitFor(frame));
    this.writeOut();
  }

  addAgent(frame: AudioFrame): void {
    if (this.finished) return;
    this.agent.add(frame, this.limitFor(frame));
    this.writeOut();
  }

  /**
   * The end of the recording for this frame: now() + RECORDING_SLACK_MS, the clock read only when the frame reaches
   * past the value last read (the limit only grows, so a frame within an earlier one is within the current one):
   * frames come stamped well inside it, and this runs for every frame of both channels.
   */
  private limitFor(frame: AudioFrame): number {
    // CONTINUITY_MS: a frame may be placed that much later than its stamp (Track.add).
    const endMs = frame.timestampMs + (frame.pcm.length * 1000) / frame.sampleRate + CONTINUITY_MS;
    if (endMs > this.limitMs) this.limitMs = this.now() + RECORDING_SLACK_MS;
    return this.limitMs;
  }

  /**
   * Writes the rest and the header, closes the file and says what it holds (a call with no audio is a WAV with
   * no samples); no audio is taken after this. The rest is the last WINDOW_S seconds or so (writeOut wrote the
   * others as the call went). If the file could not be written, it is removed and this rejects.
   */
  async finish(): Promise<Recording> {
    this.finished = true;
    const frames = Math.max(this.left.length, this.right.length);
    while (this.written * this.blockSize < frames) this.writeBlock(Math.min(this.blockSize, frames - this.written * this.blockSize));
    const header = Buffer.alloc(44);
    writeHeader(header, this.sampleRate, frames);
    this.append(header, 0);
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch (err) {
        this.failure ??= err;
      }
    }
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
    if (!left && !right && !this.started) return;
    this.started = true;
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

  /**
   * Writes `data` at `position`, at once (a second of a call is 32 KB, written in microseconds to the page cache).
   * Not through fs/promises: every asynchronous write wakes a thread of libuv's pool, and on a busy core the event
   * loop lost the core to it nearly every time (bench:calls at 150 calls on one core: the main thread was taken off
   * the core 100-170 times a second more, its profile had 18% of its time in the write call, and about twice as many
   * frames went out late, in alternating runs). A write blocks only when the kernel holds back writers of far more dirty
   * pages than recordings make (tens of KB a second per call).
   */
  private append(data: Buffer, position: number): void {
    if (this.failure !== undefined) return;
    try {
      if (this.fd === undefined) {
        this.fd = openSync(this.file, 'w', 0o600);
        // The header goes first, with no length yet: a spool file left by a stopped process is recognised by it.
        if (position !== 0) {
          const header = Buffer.alloc(44);
          writeHeader(header, this.sampleRate, 0);
          writeAll(this.fd, header, 0);
        }
      }
      writeAll(this.fd, data, position);
      if (data.length === this.blockSize * 4) this.spareData.push(data);
    } catch (err) {
      this.failure ??= err;
    }
  }
}

/** pwrite until all of `data` is written (a regular file takes it whole but for a full disk, which throws). */
function writeAll(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length;) {
    const n = writeSync(fd, data, done, data.length - done, position + done);
    if (n <= 0) throw new Error(`recording: nothing written at byte ${position + done}`);
    done += n;
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

/** The format of a WAV this module wrote (RIFF, PCM 16-bit stereo, 44-byte header), or null if it is not one. */
function wavFormat(head: Buffer): { sampleRate: number } | null {
  if (head.length < 44 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 16) !== 'WAVEfmt ') return null;
  if (
    head.readUInt16LE(20) !== 1 ||
    head.readUInt16LE(22) !== 2 ||
    head.readUInt16LE(34) !== 16 ||
    head.toString('latin1', 36, 40) !== 'data'
  )
    return null;
  const sampleRate = head.readUInt32LE(24);
  return sampleRate >= 8000 && sampleRate <= 48000 ? { sampleRate } : null;
}

/**
 * A recording whose process stopped before finish(): its header (written first, with no length) is completed from
 * the file's size, a torn last sample pair cut off. Null if the file holds no audio or is not a recording.
 */
export async function recoverSpooledRecording(file: string): Promise<Recording | null> {
  const handle = await open(file, 'r+');
  try {
    const head = Buffer.alloc(44);
    await handle.read(head, 0, 44, 0);
    const format = wavFormat(head);
    const frames = Math.floor(((await handle.stat()).size - 44) / 4);
    if (!format || frames <= 0) return null;
    await handle.truncate(44 + frames * 4);
    writeHeader(head, format.sampleRate, frames);
    await handle.write(head, 0, 44, 0);
    return { file, bytes: 44 + frames * 4, durationMs: Math.round((frames * 1000) / format.sampleRate) };
  } finally {
    await handle.close();
  }
}

/**
 * Merges the recording of another part of the same call (`stored`, a WAV this module wrote) into the recording in
 * `file`, which is rewritten with both. Each part is silent outside its own stretch of the call's clock, so taking
 * each sample from the part that has sound there lays one beside the other, in whichever order they come (and
 * the same audio in both, were a part ever merged twice, stays as it was rather than doubling). The result has the
 * stored recording's sample rate (a part at another rate is resampled).
 */
export async function mergeRecordings(stored: Buffer, file: string): Promise<Recording> {
  const into = wavFormat(stored);
  const part = await readFile(file);
  const from = wavFormat(part);
  if (!into || !from) throw new Error('not a recording this service wrote: cannot merge');
  if (!LITTLE_ENDIAN) throw new Error('merging recordings needs a little-endian machine');
  // Copies (slice): a Buffer's offset into its memory may be odd, and an Int16Array view needs it even.
  let partPcm = new Int16Array(part.buffer.slice(part.byteOffset + 44, part.byteOffset + 44 + Math.floor((part.length - 44) / 4) * 4));
  if (from.sampleRate !== into.sampleRate) {
    const [left, right] = [0, 1].map((c) =>
      resample(
        partPcm.filter((_, i) => i % 2 === c),
        from.sampleRate,
        into.sampleRate,
      ),
    );
    partPcm = new Int16Array(left!.length * 2);
    for (let i = 0; i < left!.length; i++) [partPcm[2 * i], partPcm[2 * i + 1]] = [left![i]!, right![i]!];
  }
  const storedPcm = new Int16Array(
    stored.buffer.slice(stored.byteOffset + 44, stored.byteOffset + 44 + Math.floor((stored.length - 44) / 4) * 4),
  );
  const frames = Math.max(storedPcm.length, partPcm.length) / 2;
  const out = Buffer.alloc(44 + frames * 4);
  writeHeader(out, into.sampleRate, frames);
  const pcm = new Int16Array(out.buffer, out.byteOffset + 44, frames * 2);
  pcm.set(storedPcm);
  for (let i = 0; i < partPcm.length; i++) if (partPcm[i] !== 0) pcm[i] = partPcm[i]!;
  await writeFile(file, out, { mode: 0o600 });
  return { file, bytes: out.length, durationMs: Math.round((frames * 1000) / into.sampleRate) };
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
  /** Where the transport's time 0 is on the call's clock (see CallRecorder). */
  offsetMs?: number;
  /**
   * Runs once the real transport has closed, before close() resolves: the session writes the call's end after
   * closing its transport, so a recording stored here is in place when the call is reported ended.
   */
  onClose?: () => Promise<void>;
}

/**
 * A transport that records its call where its audio is, not in this process: a media process's stream
 * (telephony/media-process.ts), whose process writes the same WAV with a CallRecorder of its own, so that the agent's
 * audio, sent there, does not come back here to be recorded. recordTransport hands the recording to it.
 */
export interface RecordsItsAudio {
  recordAudio(opts: { file: string; offsetMs: number }): { finish(): Promise<Recording> };
}

function recordsItsAudio(transport: Transport): transport is Transport & RecordsItsAudio {
  return typeof (transport as Partial<RecordsItsAudio>).recordAudio === 'function';
}

/**
 * Records the call passing through `transport`: caller frames as they are read, agent audio as it is played (or,
 * for a transport that records its own audio, as it comes and is played there).
 */
export function recordTransport(transport: Transport, opts: RecordOptions): RecordedTransport {
  const there = recordsItsAudio(transport) ? transport.recordAudio({ file: opts.file, offsetMs: opts.offsetMs ?? 0 }) : undefined;
  const recorder = there ? undefined : new CallRecorder(transport.sampleRate, opts.file, opts.offsetMs, () => transport.now());
  let closing: Promise<void> | undefined;
  // onPlayed only reports what was heard, so audio dropped by clear() (barge-in) never reaches the recording.
  if (recorder) transport.onPlayed((frame) => recorder.addAgent(frame));
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
        if (!recorder) return transport.audio()[Symbol.asyncIterator]();
        const frames = transport.audio()[Symbol.asyncIterator]();
        // One callback for the whole call, not a closure per frame.
        const record = (r: IteratorResult<AudioFrame>) => {
          if (!r.done) recorder.addCaller(r.value);
          return r;
        };
        return {
          next: () => frames.next().then(record),
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
    // A wrapper passes on everything the session may use; a transport without a screen stays without one.
    ...(transport.notify && { notify: (message) => transport.notify!(message) }),
    now: () => transport.now(),
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
  return { transport: recorded, finish: () => (recorder ?? there!).finish() };
}
