// Audio primitives every stage agrees on: 16-bit PCM frames with their rate and start time, G.711 mu-law
// (the telephone wire format Twilio streams), resampling between rates (8 kHz phone, 16 kHz models, 22.05 kHz
// espeak), frame slicing for real-time pacing, levels, and WAV files.

/** Mono signed 16-bit PCM. `timestampMs` is where the frame starts in its stream. */
export interface AudioFrame {
  pcm: Int16Array;
  sampleRate: number;
  timestampMs: number;
}

/** Frame length used on every real-time path: 20 ms is what Twilio sends and what pacing sends out. */
export const FRAME_MS = 20;

export const durationMs = (samples: number, sampleRate: number) => (samples * 1000) / sampleRate;

// ---- G.711 mu-law ----------------------------------------------------------------------------------------

const BIAS = 0x84;
const CLIP = 32635;
const DECODE_TABLE = (() => {
  const table = new Int16Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    const exponent = (u >> 4) & 0x07;
    const mantissa = u & 0x0f;
    const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    table[i] = u & 0x80 ? -magnitude : magnitude;
  }
  return table;
})();

/** Decodes into `out` when given (it must hold bytes.length samples), else into a new array. */
export function muLawDecode(bytes: Uint8Array, out: Int16Array = new Int16Array(bytes.length)): Int16Array {
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE_TABLE[bytes[i]!]!;
  return out;
}

/**
 * Hands out Int16Array views of one-second buffers: a live call's 20 ms frames without a buffer allocated for each
 * (50 a second per call, every one a native allocation the garbage collector has to track and free). A view keeps
 * its buffer alive as long as it is kept; nothing is ever written to a view twice.
 */
export class PcmArena {
  private block = new Int16Array(0);
  private used = 0;

  constructor(private readonly blockSamples: number) {}

  take(samples: number): Int16Array {
    if (this.used + samples > this.block.length) {
      this.block = new Int16Array(Math.max(this.blockSamples, samples));
      this.used = 0;
    }
    this.used += samples;
    return this.block.subarray(this.used - samples, this.used);
  }
}

/** The mu-law byte of every 16-bit sample (64 KB): encoding is one lookup per sample. */
const ENCODE_TABLE = (() => {
  const table = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) {
    let s = i - 32768;
    const sign = s < 0 ? 0x80 : 0;
    if (sign) s = -s;
    if (s > CLIP) s = CLIP;
    s += BIAS;
    let exponent = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
    const mantissa = (s >> (exponent + 3)) & 0x0f;
    table[i] = ~(sign | (exponent << 4) | mantissa) & 0xff;
  }
  return table;
})();

export function muLawEncode(pcm: Int16Array): Uint8Array {
  const out = new Uint8Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = ENCODE_TABLE[pcm[i]! + 32768]!;
  return out;
}

/** Reused by muLawBase64: the encoded bytes only live until they are turned into text. */
let scratch = Buffer.allocUnsafe(4096);

/**
 * Mu-law as base64, the payload of a Twilio media message: no buffer is allocated per frame (this runs 50 times a
 * second for every call that hears the agent).
 */
export function muLawBase64(pcm: Int16Array): string {
  if (scratch.length < pcm.length) scratch = Buffer.allocUnsafe(pcm.length);
  for (let i = 0; i < pcm.length; i++) scratch[i] = ENCODE_TABLE[pcm[i]! + 32768]!;
  return scratch.toString('base64', 0, pcm.length);
}

// ---- Mu-law as base64 bytes (Twilio media payloads read and written in place) --------------------------------
//
// A media message is JSON text carrying 20 ms of mu-law as base64. Going through strings (the payload as a string,
// then a Buffer of mu-law, then PCM; or PCM to mu-law to a base64 string to a JSON string to the socket's bytes)
// allocated a handful of objects per frame, 50 a second per call each way; these read and write the base64
// characters of a message's bytes directly.

const BASE64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_CODES = Uint8Array.from(BASE64_CHARS, (c) => c.charCodeAt(0));
/** The 6-bit value of each standard base64 character; -1 for any other byte ('=' included). */
const BASE64_VALUES = (() => {
  const values = new Int8Array(256).fill(-1);
  for (let i = 0; i < 64; i++) values[BASE64_CODES[i]!] = i;
  return values;
})();
const PAD = 0x3d;

/** Characters of the base64 (padded) text of `samples` mu-law bytes. */
export const muLawBase64Length = (samples: number) => Math.ceil(samples / 3) * 4;

/**
 * Writes the base64 text of `pcm` as mu-law (the bytes muLawBase64 would give as a string) into `out` from `at`;
 * returns where it ends. `out` must hold muLawBase64Length(pcm.length) bytes from `at`.
 */
export function muLawBase64Into(pcm: Int16Array, out: Uint8Array, at: number): number {
  const n = pcm.length;
  const whole = n - (n % 3);
  let o = at;
  for (let i = 0; i < whole; i += 3) {
    const v = (ENCODE_TABLE[pcm[i]! + 32768]! << 16) | (ENCODE_TABLE[pcm[i + 1]! + 32768]! << 8) | ENCODE_TABLE[pcm[i + 2]! + 32768]!;
    out[o++] = BASE64_CODES[v >> 18]!;
    out[o++] = BASE64_CODES[(v >> 12) & 63]!;
    out[o++] = BASE64_CODES[(v >> 6) & 63]!;
    out[o++] = BASE64_CODES[v & 63]!;
  }
  if (n - whole === 1) {
    const v = ENCODE_TABLE[pcm[whole]! + 32768]! << 16;
    out[o++] = BASE64_CODES[v >> 18]!;
    out[o++] = BASE64_CODES[(v >> 12) & 63]!;
    out[o++] = PAD;
    out[o++] = PAD;
  } else if (n - whole === 2) {
    const v = (ENCODE_TABLE[pcm[whole]! + 32768]! << 16) | (ENCODE_TABLE[pcm[whole + 1]! + 32768]! << 8);
    out[o++] = BASE64_CODES[v >> 18]!;
    out[o++] = BASE64_CODES[(v >> 12) & 63]!;
    out[o++] = BASE64_CODES[(v >> 6) & 63]!;
    out[o++] = PAD;
  }
  return o;
}

/**
 * The number of bytes the base64 text in `text[start, end)` stands for, if it is strict base64 (standard alphabet,
 * padded to a multiple of 4, '=' only at the end); -1 otherwise (Buffer.from(text, 'base64') is more lenient: such
 * text is left to it). For strict text both decode to the same bytes.
 */
export function strictBase64Length(text: Uint8Array, start: number, end: number): number {
  const len = end - start;
  if (len % 4 !== 0) return -1;
  if (len === 0) return 0;
  const pads = text[end - 1] === PAD ? (text[end - 2] === PAD ? 2 : 1) : 0;
  for (let i = start; i < end - pads; i++) if (BASE64_VALUES[text[i]!]! < 0) return -1;
  return (len / 4) * 3 - pads;
}

/**
 * Decodes the strict base64 text in `text[start, end)` (strictBase64Length said it is) as mu-law into `out`, which
 * must hold strictBase64Length(...) samples; returns `out`.
 */
export function muLawDecodeBase64(text: Uint8Array, start: number, end: number, out: Int16Array): Int16Array {
  const samples = out.length;
  let o = 0;
  for (let i = start; o < samples; i += 4) {
    const v =
      (BASE64_VALUES[text[i]!]! << 18) |
      (BASE64_VALUES[text[i + 1]!]! << 12) |
      ((BASE64_VALUES[text[i + 2]!]! & 63) << 6) |
      (BASE64_VALUES[text[i + 3]!]! & 63);
    out[o++] = DECODE_TABLE[v >> 16]!;
    if (o < samples) out[o++] = DECODE_TABLE[(v >> 8) & 0xff]!;
    if (o < samples) out[o++] = DECODE_TABLE[v & 0xff]!;
  }
  return out;
}

// ---- Resampling --------------------------------------------------------------------------------------------

const SINC_HALF_TAPS = 16;

/**
 * Band-limited resampling (windowed sinc, Blackman window) of a whole buffer. Downsampling low-passes at the new
 * Nyquist frequency so speech does not alias into the telephone band.
 */
export function resample(pcm: Int16Array, from: number, to: number): Int16Array {
  if (from === to) return pcm;
  const r = new StreamResampler(from, to);
  return concatPcm([r.push(pcm), r.flush()]).subarray(0, Math.floor((pcm.length * to) / from));
}

/**
 * The same filter for a stream cut into frames: it keeps the last few input samples between calls, so frame
 * edges leave no clicks. Output lags input by the filter's half width (2 ms).
 */
export class StreamResampler {
  private readonly ratio: number;
  private readonly cutoff: number;
  private readonly halfWidth: number;
  /** Input not yet fully used, and where (in its samples) the next output sample falls. */
  private buffer = new Float64Array(0);
  private position = 0;
  private readonly taps = new Map<number, Taps>();

  constructor(
    readonly from: number,
    readonly to: number,
  ) {
    if (!(from > 0 && to > 0)) throw new Error(`bad sample rates ${from} -> ${to}`);
    this.ratio = to / from;
    // Cut-off relative to the input rate: the lower of the two Nyquist frequencies.
    this.cutoff = Math.min(1, this.ratio);
    this.halfWidth = SINC_HALF_TAPS / this.cutoff;
  }

  push(pcm: Int16Array): Int16Array {
    if (this.from === this.to) return pcm;
    const joined = new Float64Array(this.buffer.length + pcm.length);
    joined.set(this.buffer);
    joined.set(pcm, this.buffer.length);
    this.buffer = joined;
    return this.drain(false);
  }

  /** The last samples, computed with silence after them (end of stream). */
  flush(): Int16Array {
    return this.from === this.to ? new Int16Array(0) : this.drain(true);
  }

  private drain(final: boolean): Int16Array {
    const step = 1 / this.ratio;
    const buf = this.buffer;
    const last = final ? buf.length : buf.length - this.halfWidth;
    let out = new Int16Array(Math.max(0, Math.ceil((last - this.position) / step) + 2));
    let n = 0;
    while (final ? this.position < buf.length : this.position + this.halfWidth < buf.length) {
      const center = this.position;
      const start = Math.max(0, Math.ceil(center - this.halfWidth));
      const end = Math.min(buf.length - 1, Math.floor(center + this.halfWidth));
      let acc = 0;
      let norm = 0;
      const interior = start === Math.ceil(center - this.halfWidth) && end === Math.floor(center + this.halfWidth);
      const taps = interior ? this.tapsAt(center) : undefined;
      if (taps && start === Math.floor(center) + taps.first && end === start + taps.weights.length - 1) {
        // The whole filter lies inside the buffer: its weights for this fractional position, computed once.
        const w = taps.weights;
        for (let j = 0; j < w.length; j++) acc += buf[start + j]! * w[j]!;
        norm = taps.norm;
      } else {
        for (let j = start; j <= end; j++) {
          const x = j - center;
          const w = windowedSinc(x * this.cutoff, x / this.halfWidth);
          acc += buf[j]! * w;
          norm += w;
        }
      }
      const v = norm !== 0 ? acc / norm : 0;
      if (n === out.length) {
        const grown = new Int16Array(out.length * 2 + 16);
        grown.set(out);
        out = grown;
      }
      out[n++] = v > 32767 ? 32767 : v < -32768 ? -32768 : Math.round(v);
      this.position += step;
    }
    // Keep what the next outputs still need (half a filter width before the next position).
    const keepFrom = Math.max(0, Math.floor(this.position - this.halfWidth) - 1);
    this.buffer = final ? new Float64Array(0) : buf.slice(keepFrom);
    this.position = final ? 0 : this.position - keepFrom;
    return out.subarray(0, n);
  }

  /**
   * The filter's weights at a position's fraction of a sample (quantised to 2^-20 of one: well under a 16-bit step),
   * from floor(position) + first on. A rational ratio visits few fractions (2 for 8 -> 16 kHz, 320 for 22.05 -> 16
   * kHz), so the sines and cosines of each are computed once per resampler instead of for every tap of every sample
   * (that cost a whole core at 150 calls falling back to the local STT).
   */
  private tapsAt(center: number): Taps | undefined {
    const key = Math.round((center - Math.floor(center)) * TAP_FRACTIONS);
    let taps = this.taps.get(key);
    if (taps) return taps;
    if (this.taps.size >= MAX_CACHED_FRACTIONS) return undefined;
    const frac = key / TAP_FRACTIONS;
    const first = Math.ceil(frac - this.halfWidth);
    const weights = new Float64Array(Math.floor(frac + this.halfWidth) - first + 1);
    let norm = 0;
    for (let j = 0; j < weights.length; j++) {
      const x = first + j - frac;
      norm += weights[j] = windowedSinc(x * this.cutoff, x / this.halfWidth);
    }
    taps = { first, weights, norm };
    this.taps.set(key, taps);
    return taps;
  }
}

interface Taps {
  first: number;
  weights: Float64Array;
  norm: number;
}

const TAP_FRACTIONS = 2 ** 20;
const MAX_CACHED_FRACTIONS = 4096;

function windowedSinc(x: number, position: number): number {
  const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
  // Blackman window over position in [-1, 1].
  const t = (position + 1) / 2;
  const window = 0.42 - 0.5 * Math.cos(2 * Math.PI * t) + 0.08 * Math.cos(4 * Math.PI * t);
  return sinc * window;
}

// ---- Framing and levels --------------------------------------------------------------------------------------

/** Cuts PCM into frames of `frameMs` (the last one zero-padded), stamped from `startMs`. */
export function toFrames(pcm: Int16Array, sampleRate: number, startMs = 0, frameMs = FRAME_MS): AudioFrame[] {
  const size = Math.round((sampleRate * frameMs) / 1000);
  const frames: AudioFrame[] = [];
  for (let offset = 0; offset < pcm.length; offset += size) {
    const slice = pcm.subarray(offset, offset + size);
    const padded = slice.length === size ? slice.slice() : Int16Array.from({ length: size }, (_, i) => slice[i] ?? 0);
    frames.push({ pcm: padded, sampleRate, timestampMs: startMs + durationMs(offset, sampleRate) });
  }
  return frames;
}

export function concatPcm(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Level in dBFS (0 = full scale; silence is -Infinity). */
export function dbfs(pcm: Int16Array): number {
  if (pcm.length === 0) return -Infinity;
  // An indexed loop: for-of over a typed array goes through the iterator protocol, an object per sample wherever
  // it is not optimised away (this runs for every caller frame, in the VAD).
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i]! * pcm[i]!;
  const rms = Math.sqrt(sum / pcm.length);
  return rms === 0 ? -Infinity : 20 * Math.log10(rms / 32768);
}

// ---- WAV -----------------------------------------------------------------------------------------------------

/** Reads PCM WAV (8/16-bit integer or 32-bit float, any channel count; channels are mixed down to mono). */
export function parseWav(buf: Uint8Array): { pcm: Int16Array; sampleRate: number } {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 12 || b.toString('latin1', 0, 4) !== 'RIFF' || b.toString('latin1', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  let format: { tag: number; channels: number; sampleRate: number; bits: number } | undefined;
  let offset = 12;
  while (offset + 8 <= b.length) {
    const id = b.toString('latin1', offset, offset + 4);
    // Streamed WAVs (espeak to stdout) carry 0xFFFFFFFF as the data size: read to the end.
    let size = b.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        tag: b.readUInt16LE(body),
        channels: b.readUInt16LE(body + 2),
        sampleRate: b.readUInt32LE(body + 4),
        bits: b.readUInt16LE(body + 14),
      };
      if (format.tag === 0xfffe && size >= 26) format.tag = b.readUInt16LE(body + 24);
    } else if (id === 'data') {
      if (!format) throw new Error('WAV data before its format');
      if (size === 0xffffffff || body + size > b.length) size = b.length - body;
      return { pcm: decodeSamples(b.subarray(body, body + size), format), sampleRate: format.sampleRate };
    }
    offset = body + size + (size % 2);
  }
  throw new Error('WAV file without data');
}

function decodeSamples(data: Buffer, f: { tag: number; channels: number; bits: number }): Int16Array {
  const bytes = f.bits / 8;
  const frames = Math.floor(data.length / (bytes * f.channels));
  const out = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < f.channels; c++) {
      const at = (i * f.channels + c) * bytes;
      if (f.tag === 3 && f.bits === 32) sum += data.readFloatLE(at) * 32767;
      else if (f.tag === 1 && f.bits === 16) sum += data.readInt16LE(at);
      else if (f.tag === 1 && f.bits === 8) sum += (data[at]! - 128) << 8;
      else if (f.tag === 7 && f.bits === 8) sum += DECODE_TABLE[data[at]!]!;
      else throw new Error(`unsupported WAV encoding (format ${f.tag}, ${f.bits} bits)`);
    }
    const v = Math.round(sum / f.channels);
    out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  return out;
}

export function encodeWav(pcm: Int16Array, sampleRate: number): Buffer {
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}
