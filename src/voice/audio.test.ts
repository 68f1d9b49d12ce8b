import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  concatPcm,
  dbfs,
  encodeWav,
  muLawBase64,
  muLawBase64Into,
  muLawBase64Length,
  muLawDecode,
  muLawDecodeBase64,
  muLawEncode,
  parseWav,
  PcmArena,
  resample,
  StreamResampler,
  strictBase64Length,
  toFrames,
} from './audio.js';

const sine = (hz: number, rate: number, ms: number, amplitude = 8000) =>
  Int16Array.from({ length: Math.round((rate * ms) / 1000) }, (_, i) => Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate)));
const zeroCrossings = (pcm: Int16Array) => {
  let n = 0;
  for (let i = 1; i < pcm.length; i++) if (pcm[i - 1]! < 0 !== pcm[i]! < 0) n++;
  return n;
};
const rms = (pcm: Int16Array) => Math.sqrt(pcm.reduce((s, x) => s + x * x, 0) / pcm.length);

describe('mu-law (G.711)', () => {
  it('matches the standard code points', () => {
    expect(Array.from(muLawEncode(Int16Array.from([0, 32767, -32768])))).toEqual([0xff, 0x80, 0x00]);
    expect(Array.from(muLawDecode(Uint8Array.from([0xff, 0x7f, 0x80, 0x00])))).toEqual([0, 0, 32124, -32124]);
  });

  it('round-trips every 16-bit value within the companding error (under 4% of the value, or 8 near zero)', () => {
    const all = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
    const back = muLawDecode(muLawEncode(all));
    for (let i = 0; i < all.length; i += 7) {
      const x = Math.max(-32124, Math.min(32124, all[i]!));
      expect(Math.abs(back[i]! - x)).toBeLessThanOrEqual(Math.max(8, Math.abs(x) * 0.04));
    }
    // Decoding then encoding is exact: every byte is its own code point.
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0x7f); // 0x7f and 0xff both mean 0
    expect(Array.from(muLawEncode(muLawDecode(bytes)))).toEqual(Array.from(bytes));
  });

  it('as base64 (a Twilio media payload): the same bytes, for frames of any length one after another', () => {
    const long = Int16Array.from({ length: 5000 }, (_, i) => Math.round(Math.sin(i / 3) * 20000));
    const frame = long.subarray(100, 260);
    for (const pcm of [frame, long, frame.subarray(0, 7)]) expect(muLawBase64(pcm)).toBe(Buffer.from(muLawEncode(pcm)).toString('base64'));
  });

  it('as base64 written into bytes: what muLawBase64 gives, for every 16-bit value and every length mod 3', () => {
    const all = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
    for (const pcm of [all, all.subarray(1), all.subarray(2), all.subarray(0, 0), all.subarray(5, 6), all.subarray(7, 9)]) {
      const out = Buffer.alloc(muLawBase64Length(pcm.length) + 4, 0x21);
      expect(muLawBase64Into(pcm, out, 2)).toBe(2 + muLawBase64Length(pcm.length));
      expect(out.toString('latin1', 2, out.length - 2)).toBe(muLawBase64(pcm));
      // Nothing written outside.
      expect([out[0], out[1], out[out.length - 2], out[out.length - 1]]).toEqual([0x21, 0x21, 0x21, 0x21]);
    }
  });

  it('decoded from base64 bytes: what Buffer.from(text, "base64") then muLawDecode give, for every byte value', () => {
    const bytes = Uint8Array.from({ length: 256 * 3 + 2 }, (_, i) => (i * 7) % 256);
    for (const n of [0, 1, 2, 3, 160, 256, bytes.length]) {
      const text = Buffer.from(Buffer.from(bytes.subarray(0, n)).toString('base64'), 'latin1');
      // Placed inside a longer message, as the payload of a media message is.
      const message = Buffer.concat([Buffer.from('{"payload":"'), text, Buffer.from('"}')]);
      const start = 12;
      const end = start + text.length;
      expect(strictBase64Length(message, start, end)).toBe(n);
      const pcm = muLawDecodeBase64(message, start, end, new Int16Array(n));
      expect(Array.from(pcm)).toEqual(Array.from(muLawDecode(bytes.subarray(0, n))));
    }
  });

  it('leaves base64 that is not strict (no padding, URL-safe, spaces, misplaced "=") to Buffer.from', () => {
    for (const text of ['QUJD', 'QUI=', 'QQ==']) expect(strictBase64Length(Buffer.from(text), 0, text.length)).toBeGreaterThan(0);
    for (const text of ['QUI', 'QQ', 'Q===', '====', 'QU=D', 'Q=I=', 'QU-_', 'QU J', 'QUJD\n', 'QUJ\u00e9'])
      expect(strictBase64Length(Buffer.from(text), 0, Buffer.byteLength(text))).toBe(-1);
  });
});

describe('PcmArena', () => {
  it('hands out views that never share samples, a new buffer when one is full', () => {
    const arena = new PcmArena(400);
    const views = [160, 160, 160, 500, 10].map((n) => arena.take(n));
    expect(views.map((v) => v.length)).toEqual([160, 160, 160, 500, 10]);
    views.forEach((v, i) => v.fill(i + 1));
    views.forEach((v, i) => expect(v.every((x) => x === i + 1)).toBe(true));
    expect(views[1]!.buffer).toBe(views[0]!.buffer);
    expect(views[2]!.buffer).not.toBe(views[1]!.buffer); // 480 > 400
    expect(views[3]!.buffer).not.toBe(views[2]!.buffer); // larger than a block: a buffer of its own
    // Decoding into a view writes only there.
    const bytes = Uint8Array.from([0x00, 0x80, 0xff]);
    const into = arena.take(3);
    expect(Array.from(muLawDecode(bytes, into))).toEqual(Array.from(muLawDecode(bytes)));
    expect(views[4]!.every((x) => x === 5)).toBe(true);
  });
});

describe('resample', () => {
  it('keeps the pitch and the duration, 8 kHz <-> 16 kHz and 22.05 kHz -> 16 kHz', () => {
    const tone = sine(440, 8000, 1000);
    const up = resample(tone, 8000, 16000);
    expect(up.length).toBe(16000);
    expect(zeroCrossings(up)).toBeGreaterThanOrEqual(878);
    expect(zeroCrossings(up)).toBeLessThanOrEqual(882);
    expect(rms(up) / rms(tone)).toBeCloseTo(1, 1);
    const espeak = resample(sine(440, 22050, 1000), 22050, 16000);
    expect(espeak.length).toBe(16000);
    expect(Math.abs(zeroCrossings(espeak) - 880)).toBeLessThanOrEqual(2);
  });

  it('resamples a stream frame by frame exactly like the whole buffer (no clicks at frame edges)', () => {
    const tone = sine(440, 8000, 400);
    const whole = resample(tone, 8000, 16000);
    const stream = new StreamResampler(8000, 16000);
    const pieces = toFrames(tone, 8000).map((f) => stream.push(f.pcm));
    const joined = concatPcm([...pieces, stream.flush()]).subarray(0, whole.length);
    expect(joined.length).toBe(whole.length);
    let worst = 0;
    for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(joined[i]! - whole[i]!));
    expect(worst).toBeLessThanOrEqual(1);
    // Output keeps pace with input: 20 ms in gives about 20 ms out (minus the 2 ms the filter holds back).
    expect(pieces[5]!.length).toBeGreaterThanOrEqual(318);
    expect(pieces[5]!.length).toBeLessThanOrEqual(322);
  });

  it('filters what the lower rate cannot carry instead of aliasing it', () => {
    const high = sine(6000, 16000, 500); // above the 4 kHz Nyquist limit of 8 kHz audio
    const down = resample(high, 16000, 8000);
    expect(rms(down) / rms(high)).toBeLessThan(0.05);
    const speechBand = sine(1000, 16000, 500);
    expect(rms(resample(speechBand, 16000, 8000)) / rms(speechBand)).toBeGreaterThan(0.95);
  });
});

describe('frames, levels and WAV', () => {
  it('cuts 20 ms frames stamped in stream time, padding the last one', () => {
    const frames = toFrames(sine(300, 8000, 1010), 8000, 1000);
    expect(frames).toHaveLength(51);
    expect(frames.every((f) => f.pcm.length === 160 && f.sampleRate === 8000)).toBe(true);
    expect(frames.slice(0, 3).map((f) => f.timestampMs)).toEqual([1000, 1020, 1040]);
    expect(Array.from(frames[50]!.pcm.subarray(80))).toEqual(new Array(80).fill(0));
    expect(concatPcm(frames.map((f) => f.pcm)).length).toBe(51 * 160);
  });

  it('measures level in dBFS', () => {
    expect(dbfs(new Int16Array(160))).toBe(-Infinity);
    expect(dbfs(Int16Array.from({ length: 160 }, (_, i) => (i % 2 ? 32767 : -32768)))).toBeCloseTo(0, 1);
    expect(dbfs(sine(440, 8000, 100, 3277))).toBeCloseTo(-23, 0); // 0.1 of full scale, sine: -20 - 3 dB
  });

  it('writes and reads WAV, including real 8 kHz recordings', () => {
    const pcm = sine(440, 16000, 100);
    const back = parseWav(encodeWav(pcm, 16000));
    expect(back.sampleRate).toBe(16000);
    expect(Array.from(back.pcm)).toEqual(Array.from(pcm));
    expect(() => parseWav(Buffer.from('not a wav file at all'))).toThrow(/not a WAV/);
    const digit = parseWav(readFileSync(new URL('../../test/fixtures/audio/0_jackson_0.wav', import.meta.url)));
    expect(digit.sampleRate).toBe(8000);
    expect(digit.pcm.length).toBeGreaterThan(2000);
    expect(dbfs(digit.pcm)).toBeGreaterThan(-40);
  });
});
