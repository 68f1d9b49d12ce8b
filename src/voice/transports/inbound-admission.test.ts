// InboundAdmission on a hand-driven clock: audio at most the lead ahead of the wall clock, a flood refused, a
// drifting or bursty real caller never refused; message and control rates; and the bounded EventQueue.
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../lib/event-queue.js';
import { DEFAULT_ADMISSION, InboundAdmission } from './inbound-admission.js';

const RATE = 16000;

function clocked() {
  let t = 1000;
  const clock = { now: () => t, advance: (ms: number) => (t += ms) };
  return { clock, admission: new InboundAdmission(RATE, clock.now) };
}

describe('InboundAdmission', () => {
  it('takes audio up to the lead ahead of the wall clock and drops the rest', () => {
    const { clock, admission } = clocked();
    // 1 s messages as fast as possible, the clock standing still: 1.5 s is taken, then nothing.
    expect(admission.audio(RATE)).toBe(RATE);
    expect(admission.audio(RATE)).toBe(RATE / 2);
    expect(admission.audio(RATE)).toBe(0);
    expect(admission.droppedMs).toBe(1500);
    expect(admission.violation).toBeUndefined();
    // The wall clock moves on: as much again is taken.
    clock.advance(1000);
    expect(admission.audio(RATE)).toBe(RATE);
    expect(admission.latestMs()).toBe(2500);
  });

  it('closes a caller that keeps flooding: 1 s messages with no time passing are refused after a few seconds dropped', () => {
    const { admission } = clocked();
    let messages = 0;
    while (!admission.violation && messages < 1000) {
      admission.audio(RATE);
      messages++;
    }
    expect(admission.violation).toBe('audio sent faster than real time');
    expect(messages).toBeLessThanOrEqual(8); // 1.5 s taken + 5 s dropped
    expect(admission.audio(RATE)).toBe(0);
  });

  it('never refuses a real caller: a burst after a network stall, and a sound card 0.1% fast for an hour', () => {
    const { clock, admission } = clocked();
    // 20 ms frames in real time, then 3 s of silence on the wire, then the 3 s backlog at once.
    for (let i = 0; i < 100; i++) {
      expect(admission.audio(320)).toBe(320);
      clock.advance(20);
    }
    clock.advance(3000);
    for (let i = 0; i < 150; i++) expect(admission.audio(320)).toBe(320);
    // An hour of a clock running 0.1% fast: 20.02 ms of audio every 20 ms.
    const drifting = clocked();
    for (let i = 0; i < 180_000; i++) {
      drifting.admission.audio(320.32);
      drifting.clock.advance(20);
    }
    expect(drifting.admission.violation).toBeUndefined();
    expect(drifting.admission.droppedMs).toBeLessThan(3600 * 1.1);
  });

  it('tolerates at most twice real time: half is dropped, the call goes on', () => {
    const { clock, admission } = clocked();
    for (let i = 0; i < 6000; i++) {
      admission.audio(640); // 40 ms every 20 ms
      clock.advance(20);
    }
    expect(admission.violation).toBeUndefined();
    expect(admission.droppedMs).toBeGreaterThan(100_000);
  });

  it('bounds the message rate and the control rate, with a burst for a backlog', () => {
    const { clock, admission } = clocked();
    for (let i = 0; i < DEFAULT_ADMISSION.messageBurst; i++) expect(admission.message()).toBe(true);
    clock.advance(10); // 5 more
    for (let i = 0; i < 5; i++) expect(admission.message()).toBe(true);
    expect(admission.message()).toBe(false);
    expect(admission.violation).toMatch(/messages a second/);

    const c = clocked();
    for (let i = 0; i < 40; i++) expect(c.admission.control()).toBe(true);
    expect(c.admission.control()).toBe(false);
    expect(c.admission.violation).toMatch(/control messages/);
    // A person pressing keys a few times a second never gets near it.
    const p = clocked();
    for (let i = 0; i < 1000; i++) {
      expect(p.admission.control()).toBe(true);
      p.clock.advance(200);
    }
  });
});

describe('EventQueue with a capacity', () => {
  it('holds at most its capacity while nobody reads, dropping the newest', async () => {
    const q = new EventQueue<number>(3);
    const pushed = [1, 2, 3, 4, 5].map((n) => q.push(n));
    expect(pushed).toEqual([true, true, true, false, false]);
    expect(q.size).toBe(3);
    expect(q.dropped).toBe(2);
    q.end();
    const got: number[] = [];
    for await (const n of q) got.push(n);
    expect(got).toEqual([1, 2, 3]);
  });
});
