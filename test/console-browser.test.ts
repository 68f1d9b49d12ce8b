// The console end to end in Debian's Chromium (playwright-core, never a downloaded browser), against the service as
// a process on its embedded defaults and local engines: sign up -> upload a document and see it ready -> edit the
// greeting -> Talk with an espeak-ng WAV as the microphone: the greeting and a reply grounded in the document are
// heard (the page played agent audio; the transcript shows the turns) -> the caller barges in and the agent stops
// -> hang up -> the call is in the list, its page shows the latency waterfall and its recording plays -> log out,
// reload, signed out. Screenshots of each page go to test/artifacts/console/. It prints the voice-to-voice latency as
// the caller hears it: from the end of each utterance in the microphone file to the first agent audio played after it.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api as apiAt,
  axeViolations,
  type ConsoleService,
  isSerious,
  launchChromium,
  shot,
  signUpInPage,
  startService,
  until,
} from './console-browser-kit.js';
import { WIRE_PASS } from './helpers.js';

const GREETING = 'Hello, Sunrise clinic.';
// The parking answer is long on purpose: the caller's second utterance must land while the agent is still speaking.
const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays and at nine on Saturdays.\n\n' +
  '# Parking\n\nFree parking is in the garage on Elm Street, behind the clinic. The garage has three levels and ' +
  'the first level is kept for patients with reduced mobility. Take a ticket at the gate and bring it to the front ' +
  'desk, where we stamp it so that you leave without paying. The garage closes at eight in the evening.';
/** web/src/audio/web-call-client.ts's PLAYING_MARK: the page's User Timing mark when agent audio starts playing. */
const PLAYING_MARK = 'web-call:agent-audio-playing';
/** A sample louder than this (of 32767, about -40 dBFS) is speech: espeak-ng's silences are digital zeros. */
const LOUD = 300;

/** espeak-ng's 22.05 kHz mono WAV as samples. */
function speak(text: string): Int16Array {
  const wav = execFileSync('espeak-ng', ['-v', 'en-us+klatt', '-s', '150', '--stdout', text]);
  const data = wav.indexOf('data');
  const bytes = wav.subarray(data + 8);
  return new Int16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + (bytes.length & ~1)));
}

const RATE = 22_050;
const silence = (seconds: number) => new Int16Array(Math.round(seconds * RATE));

/** Where the speech in `samples` starts and ends (ms; espeak-ng pads its output with a little silence). */
function speechSpan(samples: Int16Array): { startMs: number; endMs: number } {
  let first = -1;
  let last = -1;
  samples.forEach((v, i) => {
    if (Math.abs(v) > LOUD) {
      if (first < 0) first = i;
      last = i;
    }
  });
  return { startMs: (first / RATE) * 1000, endMs: ((last + 1) / RATE) * 1000 };
}

function writeWav(file: string, parts: Int16Array[]): void {
  const samples = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.alloc(44 + samples * 2);
  out.write('RIFF', 0);
  out.writeUInt32LE(36 + samples * 2, 4);
  out.write('WAVEfmt ', 8);
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20);
  out.writeUInt16LE(1, 22);
  out.writeUInt32LE(RATE, 24);
  out.writeUInt32LE(RATE * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36);
  out.writeUInt32LE(samples * 2, 40);
  let at = 44;
  for (const p of parts) {
    Buffer.from(p.buffer, p.byteOffset, p.byteLength).copy(out, at);
    at += p.byteLength;
  }
  writeFileSync(file, out);
}

/**
 * Runs in the page before its scripts: every binary frame the page sends on a websocket (the microphone, 16 kHz
 * PCM16, 20 ms a frame) is noted with when it was sent and where its loud samples are, so the test can find when
 * the caller's utterances reached the call; and when each caller.final arrived (the caller's turn ended), on the
 * page's clock like the playing marks.
 */
function noteCallTimes(loud: number): void {
  const frames: [number, number, number, number][] = [];
  const finals: number[] = [];
  Object.assign(window, { micFrames: frames, callerFinals: finals });
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (this: WebSocket, data: string | ArrayBufferLike | Blob | ArrayBufferView) {
    if (data instanceof ArrayBuffer) {
      const pcm = new Int16Array(data);
      let first = -1;
      let last = -1;
      for (let i = 0; i < pcm.length; i++) {
        if (Math.abs(pcm[i]!) > loud) {
          if (first < 0) first = i;
          last = i;
        }
      }
      if (first >= 0) frames.push([performance.now(), pcm.length, first, last]);
    }
    return send.call(this, data);
  };
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      this.addEventListener('message', (e: MessageEvent) => {
        if (typeof e.data === 'string' && e.data.includes('"caller.final"')) finals.push(performance.now());
      });
    }
  };
}

/**
 * The caller's utterances as the page captured them: runs of loud samples with less than `gapMs` of quiet inside,
 * each as its first and last loud sample on the page's clock. A frame is sent the moment its last sample is
 * captured, so sample i of a frame of n was captured (n - i) / 16 ms before the frame was sent.
 */
function capturedUtterances(frames: [number, number, number, number][], gapMs = 1000): { startMs: number; endMs: number }[] {
  const found: { startMs: number; endMs: number }[] = [];
  for (const [sentAt, n, first, last] of frames) {
    const firstAt = sentAt - (n - first) / 16;
    const lastAt = sentAt - (n - 1 - last) / 16;
    const current = found.at(-1);
    if (current && firstAt - current.endMs <= gapMs) current.endMs = lastAt;
    else found.push({ startMs: firstAt, endMs: lastAt });
  }
  return found;
}

let svc: ConsoleService | undefined;
let browser: Browser | undefined;
/** The microphone file's utterances (ms from its start): the question, then the interruptions. */
const spoken: { startMs: number; endMs: number }[] = [];

beforeAll(async () => {
  if (WIRE_PASS) return;
  svc = await startService();
  // The microphone: quiet while the greeting plays, the question, then the caller keeps interrupting, then quiet.
  const mic = path.join(svc.dir, 'mic.wav');
  const question = speak('Where is the free parking?');
  // Each interruption asks the question again: on a loaded machine the greeting may start so late that the first
  // question is said over it (and is not a turn), and a later one still gets the grounded answer.
  const interrupt = speak('Sorry, where is the free parking?');
  const parts = [
    // The greeting is about 2 s of speech; a loaded machine may start it late, and words over it are not a question.
    silence(9),
    question,
    // Then the caller keeps talking over the agent: an interruption every 3 s of quiet. Whatever the machine's speed,
    // some land while an answer is playing (one that comes while the agent is quiet is a new question, and the next
    // one talks over its answer). On a fast machine the parking answer is over before the first one.
    silence(5),
    ...Array.from({ length: 8 }, () => [interrupt, silence(3)]).flat(),
    silence(30),
  ];
  writeWav(mic, parts);
  let offset = 0;
  for (const p of parts) {
    if (p === question || p === interrupt) {
      const span = speechSpan(p);
      spoken.push({ startMs: offset + span.startMs, endMs: offset + span.endMs });
    }
    offset += (p.length / RATE) * 1000;
  }
  browser = await launchChromium(mic);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await svc?.stop();
});

const api = <T>(token: string, method: string, url: string, body?: unknown) => apiAt<T>(svc!.base, token, method, url, body);

describe.skipIf(WIRE_PASS)('the console in Chromium', () => {
  it('sign up, upload, edit the greeting, talk by microphone with a barge-in, read the call, log out', async () => {
    const base = svc!.base;
    const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript(noteCallTimes, LOUD);
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const email = `owner-${Date.now()}@example.com`;
    const password = 'correct horse battery';

    // Sign up.
    await page.goto(`${base}/signup`);
    await shot(page, '01-signup');
    const token = await signUpInPage(page, base, { business: 'Sunrise Clinic', email, password });
    expect(token).toBeTruthy();

    // Knowledge: upload, and watch it become ready.
    await page.goto(`${base}/knowledge`);
    await page
      .locator('input[type=file][multiple]')
      .setInputFiles({ name: 'clinic.md', mimeType: 'text/markdown', buffer: Buffer.from(CLINIC) });
    await until(
      'the document ready',
      async () => {
        const docs = await api<{ items: { status: string }[] }>(token, 'GET', '/api/v1/documents');
        return docs.items.length === 1 && docs.items[0]!.status === 'ready';
      },
      120_000,
    );
    await page.getByText('ready', { exact: false }).first().waitFor({ timeout: 30_000 });
    await shot(page, '02-knowledge');

    // Agent: the greeting.
    await page.goto(`${base}/agent`);
    const greeting = page.getByLabel('Greeting');
    await greeting.waitFor();
    await greeting.fill(GREETING);
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await until(
      'the greeting saved',
      async () => (await api<{ greeting: string }>(token, 'GET', '/api/v1/settings/tenant')).greeting === GREETING,
    );
    await shot(page, '03-agent');

    // Talk: the microphone is the WAV.
    await page.goto(`${base}/talk`);
    await page.getByRole('button', { name: 'Talk to your agent' }).click();
    await page.getByRole('button', { name: 'Hang up' }).waitFor({ timeout: 30_000 });
    // The page played agent audio (its player reports playing) ...
    await page.getByText('agent speaking').first().waitFor({ timeout: 60_000 });
    // ... the greeting, the question and the grounded answer, then the barge-in.
    const conversation = page.locator('[aria-live=polite]').last();
    try {
      await until(
        'the greeting and a grounded reply in the transcript',
        async () => {
          const text = await conversation.innerText();
          return text.includes('Sunrise clinic') && /Elm Street|garage|free parking is/i.test(text);
        },
        120_000,
      );
      await page.getByText('interrupted', { exact: true }).first().waitFor({ timeout: 90_000 });
    } catch (err) {
      await shot(page, '04-talk-failed');
      const calls = await api<{ items: { id: string }[] }>(token, 'GET', '/api/v1/calls');
      for (const c of calls.items)
        console.log(
          JSON.stringify(await api(token, 'GET', `/api/v1/calls/${c.id}/transcript`)),
          JSON.stringify(await api(token, 'GET', `/api/v1/calls/${c.id}/events`).catch(String)),
        );
      throw err;
    }
    await shot(page, '04-talk');
    await page.getByRole('button', { name: 'Hang up' }).click();
    await page.getByRole('button', { name: 'Talk again' }).waitFor({ timeout: 30_000 });
    // After the call, the stored transcript replaces the live one (and keeps the interruption).
    await page.getByText('interrupted', { exact: true }).first().waitFor({ timeout: 30_000 });
    await page.getByRole('link', { name: 'Open the call’s page' }).waitFor();

    // Voice to voice as the caller hears it. The fake microphone plays the file once from when capture starts, in
    // real time, but when that is on the page's clock is not known; the page's own record of what it sent is: the
    // first loud sample it sent is where the question starts in the file (all before it is digital silence). Each
    // utterance's end is then its captured start plus its length in the file. The agent's answer is the first
    // agent audio the page played (its PLAYING_MARK, same clock) after the caller's turn ended (caller.final came):
    // earlier starts are the audio before it, restarting after the jitter buffer ran dry on a loaded machine.
    const heard = await page.evaluate(
      (mark) => ({
        ...(window as unknown as { micFrames: [number, number, number, number][]; callerFinals: number[] }),
        playing: performance.getEntriesByName(mark).map((e) => e.startTime),
      }),
      PLAYING_MARK,
    );
    const captured = capturedUtterances(heard.micFrames);
    const ends = captured.map((c, i) => c.startMs + (spoken[i]!.endMs - spoken[i]!.startMs));
    // (The utterance's turn ended before the next utterance did; the answer played before the next turn ended.)
    const pageV2v = ends.map((end, i) => {
      const turnEnded = heard.callerFinals.find((t) => t > end && t < (ends[i + 1] ?? Infinity));
      if (turnEnded === undefined) return null;
      const nextTurnEnded = heard.callerFinals.find((t) => t > turnEnded) ?? Infinity;
      const played = heard.playing.find((t) => t > turnEnded);
      return played !== undefined && played < nextTurnEnded ? Math.round(played - end) : null;
    });
    console.log(
      `[console-browser] voice-to-voice in the page (ms, end of speech in the microphone file -> first agent audio ` +
        `played; - when none played before the next turn ended or the hang-up): ${pageV2v.map((v, i) => `${i ? `interruption ${i}` : 'question'} ${v ?? '-'}`).join(', ')}. ` +
        `Alignment check: the question's last loud sample was captured ${Math.round(captured[0]!.endMs - ends[0]!)} ms from ` +
        `its end by the file; ${heard.playing.length} playback starts`,
    );
    expect(captured.length).toBeGreaterThan(0);

    const calls = await api<{ items: { id: string; status: string }[] }>(token, 'GET', '/api/v1/calls');
    expect(calls.items).toHaveLength(1);
    const callId = calls.items[0]!.id;
    const turns = await api<{ items: { speaker: string; text: string; interrupted: boolean; metrics: Record<string, number> }[] }>(
      token,
      'GET',
      `/api/v1/calls/${callId}/transcript`,
    );
    expect(turns.items[0]).toMatchObject({ speaker: 'agent', text: GREETING });
    expect(turns.items.some((t) => t.speaker === 'agent' && /Elm Street|garage|free parking is/i.test(t.text))).toBe(true);
    expect(turns.items.some((t) => t.speaker === 'agent' && t.interrupted)).toBe(true);
    const v2v = turns.items.map((t) => t.metrics?.voice_to_voice).filter((v): v is number => typeof v === 'number');
    console.log(`[console-browser] voice-to-voice per reply (ms, the service's measure): ${v2v.map(Math.round).join(', ')}`);

    // Calls: the call is listed; its page has the waterfall and a recording that plays.
    await page.goto(`${base}/calls`);
    await page.locator(`a[href="/calls/${callId}"]`).first().waitFor({ timeout: 30_000 });
    await shot(page, '05-calls');
    await page.locator(`a[href="/calls/${callId}"]`).first().click();
    await page.getByLabel('Latency waterfall').first().waitFor({ timeout: 60_000 });
    // The recording is stored before the call's end is (recording.saved, then call.ended).
    await page.locator('audio').waitFor({ state: 'attached', timeout: 60_000 });
    const played = await page.evaluate(async () => {
      const audio = document.querySelector('audio')!;
      audio.muted = true;
      await audio.play();
      await new Promise((r) => setTimeout(r, 1500));
      return audio.currentTime;
    });
    expect(played).toBeGreaterThan(0);
    await shot(page, '06-call');
    // The call page with a real call's waterfall and recording: no serious accessibility violation.
    expect((await axeViolations(page)).filter(isSerious)).toEqual([]);

    // Log out; a reload stays signed out (no token survives in page storage).
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.reload();
    await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: 30_000 });
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))).not.toContain('ey');
    await shot(page, '07-signed-out');
    expect(dialogs).toEqual([]);
    await context.close();
  }, 600_000);
});
