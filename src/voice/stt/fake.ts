// A simulated STT with fixed latencies, for tests and the voice benchmark: it hears speech by energy, sends
// interim results while it lasts, and answers flush() with the next scripted transcript after `finalLatencyMs`.
import { type AudioFrame, dbfs } from '../audio.js';
import { type Clock, realClock, type Timer } from '../clock.js';
import type { STT, SttEvent, SttStream } from './stt.js';
import { EventQueue } from '../../lib/event-queue.js';

export interface FakeSttOptions {
  sampleRate: number;
  /** What the caller says, utterance by utterance. */
  transcripts: string[];
  finalLatencyMs: number;
  interimEveryMs?: number;
  /** Whose timers delay the finals (a ManualClock in virtual-time tests). */
  clock?: Clock;
}

export class FakeStt implements STT {
  readonly provider = 'fake';
  readonly sampleRate: number;
  private next = 0;

  constructor(private readonly opts: FakeSttOptions) {
    this.sampleRate = opts.sampleRate;
  }

  stream(): SttStream {
    const events = new EventQueue<SttEvent>();
    let speechMs = 0;
    let speechStart: number | undefined;
    let lastLoud = 0;
    const take = () => this.opts.transcripts[this.next++] ?? '';
    let current: string | undefined;
    const clock = this.opts.clock ?? realClock;
    let timers: Timer[] = [];
    return {
      events,
      push: (frame: AudioFrame) => {
        const ms = (frame.pcm.length * 1000) / frame.sampleRate;
        if (dbfs(frame.pcm) > -45) {
          if (speechStart === undefined) {
            speechStart = frame.timestampMs;
            current = take();
            events.push({ type: 'speech-start', atMs: frame.timestampMs });
          }
          speechMs += ms;
          lastLoud = frame.timestampMs + ms;
          const every = this.opts.interimEveryMs ?? 200;
          if (current && Math.floor(speechMs / every) > Math.floor((speechMs - ms) / every)) {
            const words = current.split(' ');
            events.push({
              type: 'interim',
              text: words.slice(0, Math.max(1, Math.round((words.length * speechMs) / 1500))).join(' '),
              atMs: lastLoud,
            });
          }
        }
      },
      flush: () => {
        if (speechStart === undefined) return;
        const text = current ?? '';
        const start = speechStart;
        const end = lastLoud;
        speechStart = undefined;
        speechMs = 0;
        current = undefined;
        timers.push(
          clock.setTimeout(
            () => events.push({ type: 'final', text, startMs: start, endMs: end, confidence: 0.99, endOfTurn: true }),
            this.opts.finalLatencyMs,
          ),
        );
      },
      close: async () => {
        for (const t of timers) clock.clearTimeout(t);
        timers = [];
        events.end();
      },
    };
  }
}
