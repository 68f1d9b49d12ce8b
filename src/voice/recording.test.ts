// The call recorder: caller frames in the left channel and agent audio as heard in the right, each at its time
// on the transport's clock; barge-in (clear) keeps unplayed audio out; the WAV is a valid 16-bit stereo file.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CallRecorder,
  mergeRecordings,
  RECORDING_SLACK_MS,
  type RecordsItsAudio,
  recordTransport,
  recoverSpooledRecording,
} from './recording.js';
import { MemoryTransport } from './transports/memory.js';
import type { Transport } from './transports/transport.js';

const RATE = 8000;
const dir = mkdtempSync(path.join(os.tmpdir(), 'recording-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const spool = () => path.join(dir, `call-${++files}.wav`);
const wavOf = async (r: CallRecorder) => readFileSync((await r.finish()).file);

function readWav(wav: Buffer) {
  expect(wav.toString('latin1', 0, 4)).toBe('RIFF');
  expect(wav.readUInt32LE(4)).toBe(wav.length - 8);
  expect(wav.toString('latin1', 8, 16)).toBe('WAVEfmt ');
  const format = {
    tag: wav.readUInt16LE(20),
    channels: wav.readUInt16LE(22),
    rate: wav.readUInt32LE(24),
    byteRate: wav.readUInt32LE(28),
    align: wav.readUInt16LE(32),
    bits: wav.readUInt16LE(34),
  };
  expect(wav.toString('latin1', 36, 40)).toBe('data');
  const bytes = wav.readUInt32LE(40);
  expect(bytes).toBe(wav.length - 44);
  const left: number[] = [];
  const right: number[] = [];
  for (let i = 0; i < bytes / 4; i++) {
    left.push(wav.readInt16LE(44 + i * 4));
    right.push(wav.readInt16LE(46 + i * 4));
  }
  return { format, left, right };
}
const firstNonZero = (xs: number[]) => xs.findIndex((x) => x !== 0);
const nonZero = (xs: number[]) => xs.filter((x) => x !== 0).length;
const tone = (samples: number, value: number) => Int16Array.from({ length: samples }, (_, i) => (i % 2 ? value : -value));

describe('CallRecorder', () => {
  it('never outgrows the wall time: audio stamped past now() + RECORDING_SLACK_MS is cut off, whatever arrives', async () => {
    let now = 0;
    const r = new CallRecorder(RATE, spool(), 0, () => now);
    // A transport letting through 60 s of audio in the first second of the call (the 7.4-hour recording of 45 s).
    for (let i = 0; i < 3000; i++) r.addCaller({ pcm: tone(160, 100), sampleRate: RATE, timestampMs: i * 20 });
    for (let i = 0; i < 100; i++) r.addAgent({ pcm: tone(160, 200), sampleRate: RATE, timestampMs: 1_000_000 + i * 20 });
    now = 1000;
    r.addCaller({ pcm: tone(160, 300), sampleRate: RATE, timestampMs: 3_600_000 });
    // A frame across the limit keeps its part before it.
    r.addCaller({ pcm: tone(160, 300), sampleRate: RATE, timestampMs: 1000 + RECORDING_SLACK_MS - 10 });
    const { durationMs, file } = await r.finish();
    expect(durationMs).toBe(1000 + RECORDING_SLACK_MS);
    expect(statSync(file).size).toBe(44 + ((1000 + RECORDING_SLACK_MS) * RATE * 4) / 1000);
    const { left, right } = readWav(readFileSync(file));
    // The first 2 s (all the flood could place then) and 10 ms of the last frame.
    expect(nonZero(left)).toBe((RECORDING_SLACK_MS * RATE) / 1000 + 80);
    expect(left.at(-1)).toBe(300);
    expect(nonZero(right)).toBe(0);
  });

  it('recordTransport caps the recording at the transport’s own clock: 60 s of frames read in no time record 2 s', async () => {
    const frames = Array.from({ length: 3000 }, (_, i) => ({ pcm: tone(160, 100), sampleRate: RATE, timestampMs: i * 20 }));
    const flooding: Transport = {
      kind: 'test',
      sampleRate: RATE,
      audio: async function* () {
        yield* frames;
      },
      send: () => {},
      mark: async () => true,
      clear: () => {},
      onDtmf: () => {},
      onHangup: () => {},
      onPlayed: () => {},
      close: async () => {},
      now: () => 0,
    };
    const { transport, finish } = recordTransport(flooding, { file: spool() });
    for await (const _ of transport.audio()) void _;
    expect((await finish()).durationMs).toBe(RECORDING_SLACK_MS);
  });

  it('places each channel by timestamp: gaps are silence, late frames land where they belong', async () => {
    const r = new CallRecorder(RATE, spool());
    r.addCaller({ pcm: tone(160, 100), sampleRate: RATE, timestampMs: 0 });
    r.addCaller({ pcm: tone(160, 300), sampleRate: RATE, timestampMs: 100 }); // 60 ms of silence before it
    r.addCaller({ pcm: tone(160, 200), sampleRate: RATE, timestampMs: 20 }); // late: still at 20 ms
    r.addAgent({ pcm: tone(80, 700), sampleRate: RATE, timestampMs: 50 });
    const { file, durationMs } = await r.finish();
    const wav = readFileSync(file);
    const { format, left, right } = readWav(wav);
    expect(format).toEqual({ tag: 1, channels: 2, rate: RATE, byteRate: RATE * 4, align: 4, bits: 16 });
    expect(durationMs).toBe(120);
    expect(left.length).toBe(960);
    expect([left[0], left[159], left[160], left[319], left[320], left[799], left[800], left[959]]).toEqual([
      -100, 100, -200, 200, 0, 0, -300, 300,
    ]);
    expect(firstNonZero(right)).toBe(400);
    expect(nonZero(right)).toBe(80);
  });

  it('joins frames that start within a couple of ms of the previous one (clock jitter) without a gap', async () => {
    const r = new CallRecorder(RATE, spool());
    r.addAgent({ pcm: tone(160, 10), sampleRate: RATE, timestampMs: 1000.4 });
    r.addAgent({ pcm: tone(160, 20), sampleRate: RATE, timestampMs: 1021.3 }); // 1.3 ms late
    r.addAgent({ pcm: tone(160, 30), sampleRate: RATE, timestampMs: 1050 }); // 9 ms late: placed by its time
    const { right } = readWav(await wavOf(r));
    const start = Math.round(1000.4 * 8);
    expect(firstNonZero(right)).toBe(start);
    expect(right.slice(start, start + 320).every((x) => x !== 0)).toBe(true);
    expect(right.slice(start + 320, 1050 * 8).every((x) => x === 0)).toBe(true);
    expect(right[1050 * 8]).toBe(-30);
  });

  it('keeps audio whole across its one-second blocks: a frame over a boundary, a silent second, a later overwrite', async () => {
    const r = new CallRecorder(RATE, spool());
    r.addCaller({ pcm: tone(320, 50), sampleRate: RATE, timestampMs: 990 }); // 990-1030 ms: over the first boundary
    r.addCaller({ pcm: tone(80, 70), sampleRate: RATE, timestampMs: 995 }); // later and overlapping: replaces 995-1005 ms
    r.addAgent({ pcm: tone(160, 60), sampleRate: RATE, timestampMs: 3500 }); // the third block (2-3 s) is silence
    const { left, right } = readWav(await wavOf(r));
    expect(left.length).toBe(3520 * 8);
    expect(firstNonZero(left)).toBe(990 * 8);
    expect(nonZero(left)).toBe(320);
    expect(left.slice(990 * 8, 995 * 8).every((x) => Math.abs(x) === 50)).toBe(true);
    expect(left.slice(995 * 8, 1005 * 8).every((x) => Math.abs(x) === 70)).toBe(true);
    expect(left.slice(1005 * 8, 1030 * 8).every((x) => Math.abs(x) === 50)).toBe(true);
    expect(left.slice(1030 * 8).every((x) => x === 0)).toBe(true);
    expect(firstNonZero(right)).toBe(3500 * 8);
    expect(nonZero(right)).toBe(160);
  });

  it('builds a long recording second by second as it goes, leaving finish() only the last seconds, every second intact', async () => {
    const file = spool();
    const r = new CallRecorder(RATE, file);
    const seconds = 30;
    for (let s = 0; s < seconds; s++) {
      if (s === 7) continue; // a second nobody spoke in
      r.addCaller({ pcm: new Int16Array(RATE).fill(-(s + 1)), sampleRate: RATE, timestampMs: s * 1000 });
      r.addAgent({ pcm: new Int16Array(RATE).fill(1000 + s), sampleRate: RATE, timestampMs: s * 1000 });
    }
    // Written out already: all but the last few seconds (WINDOW_S, 2).
    expect(statSync(file).size).toBeGreaterThanOrEqual(44 + (seconds - 3) * RATE * 4);
    expect(statSync(file).size).toBeLessThan(44 + seconds * RATE * 4);
    const { durationMs } = await r.finish();
    const wav = readFileSync(file);
    expect(durationMs).toBe(seconds * 1000);
    const { left, right } = readWav(wav);
    for (let s = 0; s < seconds; s++) {
      for (const i of [s * RATE, s * RATE + RATE / 2, (s + 1) * RATE - 1]) {
        expect([left[i], right[i]]).toEqual(s === 7 ? [0, 0] : [-(s + 1), 1000 + s]);
      }
    }
  });

  it('writes each second out once it is 2 s behind the newest audio: memory stays bounded, late frames within 2 s still land', async () => {
    const r = new CallRecorder(RATE, spool());
    for (let ms = 0; ms < 20_000; ms += 20) r.addCaller({ pcm: new Int16Array(160).fill(5), sampleRate: RATE, timestampMs: ms });
    await sleep(100);
    // Seconds 0-17 are on disk (the 18th ends 2 s before the newest audio); only the last 2 s are held.
    expect(statSync(r.file).size).toBe(44 + 18 * RATE * 4);
    r.addAgent({ pcm: new Int16Array(160).fill(9), sampleRate: RATE, timestampMs: 18_500 }); // 1.5 s late: placed
    r.addAgent({ pcm: new Int16Array(160).fill(9), sampleRate: RATE, timestampMs: 2_000 }); // 18 s late: written out already
    const { left, right } = readWav(await wavOf(r));
    expect(left.length).toBe(20 * RATE);
    expect(left.every((x) => x === 5)).toBe(true);
    expect(firstNonZero(right)).toBe(18.5 * RATE);
    expect(nonZero(right)).toBe(160);
  });

  it('reuses the blocks it has written out without carrying their audio into later seconds', async () => {
    const r = new CallRecorder(RATE, spool());
    // Second s has sound in its quarter s % 4 only: a block reused from a few seconds before had it elsewhere.
    for (let s = 0; s < 30; s++) {
      const at = s * 1000 + (s % 4) * 250;
      for (let ms = 0; ms < 250; ms += 10) r.addCaller({ pcm: new Int16Array(80).fill(s + 1), sampleRate: RATE, timestampMs: at + ms });
    }
    const { left } = readWav(await wavOf(r));
    for (let s = 0; s < 30; s++) {
      const quarters = [0, 1, 2, 3].map((q) => left.slice(s * RATE + (q * RATE) / 4, s * RATE + ((q + 1) * RATE) / 4));
      const ok = quarters.every((samples, q) => samples.every((x) => x === (q === s % 4 ? s + 1 : 0)));
      expect(ok, `second ${s}`).toBe(true);
    }
  });

  it('fails the recording, leaving no file, when the file cannot be written', async () => {
    const r = new CallRecorder(RATE, path.join(dir, 'no-such-folder', 'call.wav'));
    r.addCaller({ pcm: tone(160, 100), sampleRate: RATE, timestampMs: 0 });
    await expect(r.finish()).rejects.toThrow(/ENOENT/);
    expect(existsSync(r.file)).toBe(false);
  });

  it('resamples frames at another rate, and an empty recording is a valid empty WAV', async () => {
    const r = new CallRecorder(RATE, spool());
    r.addCaller({ pcm: new Int16Array(320).fill(1000), sampleRate: 16000, timestampMs: 0 });
    const { left } = readWav(await wavOf(r));
    expect(left.length).toBe(160);
    expect(readWav(await wavOf(new CallRecorder(RATE, spool()))).left).toEqual([]);
  });
});

describe('a call recorded in parts (picked up again after a restart)', () => {
  /** Caller audio every 20 ms from `fromMs` for `ms` (transport clock), in a recorder placed at `offsetMs`. */
  const talk = (r: CallRecorder, fromMs: number, ms: number, value: number) => {
    for (let t = fromMs; t < fromMs + ms; t += 20) r.addCaller({ pcm: tone(160, value), sampleRate: RATE, timestampMs: t });
  };

  it('places a part at its offset on the call clock; the seconds before it are a hole in the file, read as silence', async () => {
    const r = new CallRecorder(RATE, spool(), 60_000);
    talk(r, 0, 2000, 500);
    const { file, durationMs } = await r.finish();
    expect(durationMs).toBe(62_000);
    const { left } = readWav(readFileSync(file));
    expect(firstNonZero(left)).toBe(60_000 * 8);
    expect(nonZero(left)).toBe(2000 * 8);
    // 62 s of stereo 8 kHz is ~2 MB: the file's blocks on disk hold about the 2 s of audio, not the minute before.
    expect(statSync(file).size).toBe(44 + 62_000 * 8 * 4);
    expect(statSync(file).blocks * 512).toBeLessThan(200_000);
  });

  it('recovers the file of a recorder that never finished (its process stopped): the seconds written out, a valid WAV', async () => {
    const r = new CallRecorder(RATE, spool(), 1000);
    talk(r, 0, 9000, 400); // 1-10 s of the call: 1-8 s are written out (2 s behind the newest audio)
    await sleep(200);
    const left = `${r.file}.left`;
    copyFileSync(r.file, left); // what a killed process leaves
    // A torn last write: half a sample pair.
    writeFileSync(left, Buffer.concat([readFileSync(left), Buffer.from([1, 2])]));
    const recovered = await recoverSpooledRecording(left);
    expect(recovered).toMatchObject({ file: left, durationMs: 8000 });
    const wav = readWav(readFileSync(left));
    expect(wav.format.rate).toBe(RATE);
    expect(firstNonZero(wav.left)).toBe(1000 * 8);
    expect(nonZero(wav.left)).toBe(7000 * 8);
    await r.finish();
    // Not a recording (or nothing in it): null, so the caller removes it.
    const junk = path.join(dir, 'junk.wav');
    writeFileSync(junk, Buffer.alloc(100, 7));
    expect(await recoverSpooledRecording(junk)).toBeNull();
    writeFileSync(junk, readFileSync(left).subarray(0, 44));
    expect(await recoverSpooledRecording(junk)).toBeNull();
  });

  it('merges two parts of a call into one recording, each at its place, in either order and across sample rates', async () => {
    const first = new CallRecorder(RATE, spool(), 0);
    talk(first, 0, 3000, 300);
    first.addAgent({ pcm: tone(800, 900), sampleRate: RATE, timestampMs: 1000 });
    const a = readFileSync((await first.finish()).file);
    const second = new CallRecorder(RATE, spool(), 5000);
    talk(second, 0, 2000, 600);
    const b = await second.finish();
    const bBytes = readFileSync(b.file);

    const merged = await mergeRecordings(a, b.file);
    expect(merged.durationMs).toBe(7000);
    const ab = readWav(readFileSync(b.file));
    expect(ab.left.slice(0, 3000 * 8).every((x) => Math.abs(x) === 300)).toBe(true);
    expect(ab.left.slice(3000 * 8, 5000 * 8).every((x) => x === 0)).toBe(true);
    expect(ab.left.slice(5000 * 8).every((x) => Math.abs(x) === 600)).toBe(true);
    expect(nonZero(ab.right)).toBe(800);
    expect(firstNonZero(ab.right)).toBe(8000);

    // The same part merged again (a sweep and a save racing): nothing doubles.
    const once = readFileSync(b.file);
    await mergeRecordings(a, b.file);
    expect(readFileSync(b.file).equals(once)).toBe(true);

    // The other order (the later part was stored first): the same recording.
    const aFile = spool();
    writeFileSync(aFile, a);
    await mergeRecordings(bBytes, aFile);
    expect(readFileSync(aFile).equals(readFileSync(b.file))).toBe(true);

    // A part at 16 kHz joins an 8 kHz recording at 8 kHz, at its place.
    const wide = new CallRecorder(16000, spool(), 5000);
    for (let t = 0; t < 2000; t += 20) wide.addCaller({ pcm: new Int16Array(320).fill(600), sampleRate: 16000, timestampMs: t });
    const w = await wide.finish();
    const mixed = await mergeRecordings(a, w.file);
    expect(mixed.durationMs).toBe(7000);
    const aw = readWav(readFileSync(w.file));
    expect(aw.format.rate).toBe(RATE);
    expect(aw.left[3000 * 8 + 10]).toBe(0);
    expect(aw.left[6000 * 8]).toBe(600);
  });
});

describe('recordTransport over the in-memory transport', () => {
  it('records the caller left and the agent right at their times, and leaves out audio dropped by clear()', async () => {
    const line = new MemoryTransport(RATE, 0);
    let closes = 0;
    const rec = recordTransport(line, { file: spool(), onClose: async () => void closes++ });
    const t = rec.transport;
    expect([t.kind, t.sampleRate]).toEqual(['memory', RATE]);
    const seen: { timestampMs: number; voiced: boolean }[] = [];
    const reading = (async () => {
      for await (const f of t.audio()) seen.push({ timestampMs: f.timestampMs, voiced: f.pcm.some((x) => x !== 0) });
    })();

    await sleep(200);
    await line.say(tone(800, 4000)); // 100 ms of caller speech
    const agentAt = line.now();
    t.send({ pcm: tone(1600, 9000), sampleRate: RATE, timestampMs: 0 }); // 200 ms, played in full
    expect(await t.mark('one')).toBe(true);
    t.send({ pcm: tone(8000, 9000), sampleRate: RATE, timestampMs: 0 }); // 1 s, cut short by barge-in
    await sleep(300);
    t.clear();
    expect(await t.mark('two')).toBe(true);
    await sleep(60);
    await t.close('done');
    await t.close('again');
    await reading;
    expect(closes).toBe(1);

    const { file, durationMs } = await rec.finish();
    const wav = readFileSync(file);
    const { left, right } = readWav(wav);
    // The caller's speech sits exactly where the frame carrying it was stamped.
    const spoke = seen.find((f) => f.voiced)!;
    expect(firstNonZero(left)).toBe(Math.round((spoke.timestampMs * RATE) / 1000));
    expect(nonZero(left)).toBe(800);
    // The agent's audio: exactly what the caller heard, from when it was first heard.
    const heardSamples = line.heard.reduce((n, f) => n + f.pcm.length, 0);
    expect(nonZero(right)).toBe(heardSamples);
    expect(heardSamples).toBeGreaterThanOrEqual(1600 + 160);
    expect(heardSamples).toBeLessThan(1600 + 8000 / 2);
    expect(firstNonZero(right)).toBe(Math.round((line.heard[0]!.atMs * RATE) / 1000));
    expect(line.heard[0]!.atMs).toBeGreaterThanOrEqual(agentAt - 1);
    // The recording runs to the last thing either side said or heard, on the same clock.
    expect(durationMs).toBeGreaterThanOrEqual(Math.max(seen.at(-1)!.timestampMs + 20, line.heard.at(-1)!.atMs + 20) - 1);
  });
});

describe('recordTransport over a transport that records its own audio (a media process stream)', () => {
  it('leaves the recording to it: nothing is recorded here, the audio passes through, and its file is the recording', async () => {
    const line = new MemoryTransport(RATE, 0);
    const asked: { file: string; offsetMs: number }[] = [];
    const theirs = { file: spool(), bytes: 44, durationMs: 0 };
    let finishes = 0;
    let listened = false;
    // The in-memory line, recording itself: recordAudio is all recordTransport should use of it for the recording.
    const recording: Transport & RecordsItsAudio = {
      get kind() {
        return line.kind;
      },
      sampleRate: line.sampleRate,
      audio: () => line.audio(),
      send: (f) => line.send(f),
      mark: (n) => line.mark(n),
      clear: () => line.clear(),
      onDtmf: (l) => line.onDtmf(l),
      onHangup: (l) => line.onHangup(l),
      onPlayed: (l) => {
        listened = true;
        line.onPlayed(l);
      },
      now: () => line.now(),
      close: (r) => line.close(r),
      recordAudio: (opts) => {
        asked.push(opts);
        return { finish: async () => (finishes++, theirs) };
      },
    };
    const order: string[] = [];
    const rec = recordTransport(recording, { file: spool(), offsetMs: 1500, onClose: async () => void order.push('onClose') });
    expect(asked).toEqual([{ file: path.join(dir, `call-${files}.wav`), offsetMs: 1500 }]);
    // The agent's audio is not asked back for a recording here.
    expect(listened).toBe(false);
    const frames: number[] = [];
    const reading = (async () => {
      for await (const f of rec.transport.audio()) frames.push(f.pcm.length);
    })();
    await line.say(tone(800, 4000));
    await rec.transport.close('done').then(() => order.push('closed'));
    await reading;
    expect(frames.reduce((a, b) => a + b, 0)).toBe(800);
    expect(order).toEqual(['onClose', 'closed']);
    expect(await rec.finish()).toBe(theirs);
    expect(finishes).toBe(1);
    // Nothing was written here.
    expect(existsSync(asked[0]!.file)).toBe(false);
  });
});
