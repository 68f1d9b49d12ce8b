import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { concatPcm, parseWav, resample, toFrames } from '../audio.js';
import { EnergyVad } from './energy-vad.js';

const RATE = 16000;
const noise = (ms: number, amplitude = 30) =>
  Int16Array.from({ length: (RATE * ms) / 1000 }, () => Math.round((Math.random() * 2 - 1) * amplitude));
const voice = (ms: number, amplitude = 4000) =>
  Int16Array.from({ length: (RATE * ms) / 1000 }, (_, i) =>
    Math.round(amplitude * (Math.sin((2 * Math.PI * 180 * i) / RATE) + 0.5 * Math.sin((2 * Math.PI * 540 * i) / RATE))),
  );

function run(pcm: Int16Array, rate = RATE) {
  const vad = new EnergyVad();
  const events: { event: string; atMs: number }[] = [];
  for (const f of toFrames(pcm, rate)) {
    const e = vad.push(f);
    if (e) events.push({ event: e, atMs: f.timestampMs });
  }
  return events;
}

describe('EnergyVad', () => {
  it('starts after the minimum speech time and ends after the minimum silence', () => {
    const events = run(concatPcm([noise(500), voice(600), noise(500)]));
    expect(events.map((e) => e.event)).toEqual(['speech-start', 'speech-end']);
    expect(events[0]!.atMs).toBeGreaterThanOrEqual(540);
    expect(events[0]!.atMs).toBeLessThanOrEqual(580);
    expect(events[1]!.atMs).toBeGreaterThanOrEqual(1280);
    expect(events[1]!.atMs).toBeLessThanOrEqual(1320);
  });

  it('ignores a click shorter than the minimum speech time and a pause shorter than the minimum silence', () => {
    expect(run(concatPcm([noise(300), voice(40), noise(400)]))).toEqual([]);
    const events = run(concatPcm([noise(300), voice(400), noise(120), voice(400), noise(400)]));
    expect(events.map((e) => e.event)).toEqual(['speech-start', 'speech-end']);
  });

  it('adapts to steady line noise instead of hearing it as speech', () => {
    expect(run(concatPcm([noise(2000, 600)]))).toEqual([]);
    expect(run(concatPcm([noise(1000, 600), voice(500, 6000), noise(500, 600)])).map((e) => e.event)).toEqual([
      'speech-start',
      'speech-end',
    ]);
  });

  it('finds the spoken digit in a real 8 kHz recording', () => {
    const file = new URL('../../../test/fixtures/audio/3_nicolas_1.wav', import.meta.url);
    const { pcm, sampleRate } = parseWav(readFileSync(file));
    const padded = concatPcm([new Int16Array(sampleRate / 2), pcm, new Int16Array(sampleRate / 2)]);
    const events = run(resample(padded, sampleRate, RATE));
    expect(events.map((e) => e.event)).toEqual(['speech-start', 'speech-end']);
  });
});
