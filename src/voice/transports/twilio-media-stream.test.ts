// Tests for TwilioMediaStreamTransport against the simulated Twilio leg (src/sim/twilio-caller.ts) over a real
// websocket, and for parseConnectStream.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { parseConnectStream, TwilioCallerLeg } from '../../sim/twilio-caller.js';
import { EventEmitter } from 'node:events';
import { type AudioFrame, muLawBase64, muLawDecode, muLawEncode, parseWav } from '../audio.js';
import { type TwilioStart, TwilioMediaStreamTransport } from './twilio-media-stream.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Clock, ManualClock } from '../clock.js';

const tone = (ms: number, amplitude = 8000, hz = 440) =>
  Int16Array.from({ length: (8000 * ms) / 1000 }, (_, i) => Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / 8000)));
const roundTrip = (pcm: Int16Array) => muLawDecode(muLawEncode(pcm));

type Accepted = { transport: TwilioMediaStreamTransport; start: TwilioStart } | null;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: { token?: string; startTimeoutMs?: number; leadMs?: number; clock?: () => number } = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const accepted: Promise<Accepted>[] = [];
  const waiting: ((a: Promise<Accepted>) => void)[] = [];
  wss.on('connection', (socket) => {
    const a = TwilioMediaStreamTransport.accept(socket, {
      authorize: async (start) => start.customParameters.token === (opts.token ?? 'good'),
      startTimeoutMs: opts.startTimeoutMs,
      leadMs: opts.leadMs,
      clock: opts.clock,
    });
    const w = waiting.shift();
    if (w) w(a);
    else accepted.push(a);
  });
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/twilio/media`;
  /** The next accepted connection. */
  const next = () => accepted.shift() ?? new Promise<Accepted>((r) => waiting.push((a) => void a.then(r)));
  return { url, next };
}

/** A connected call: the service's transport and the Twilio leg. */
async function call(
  parameters: Record<string, string> = { token: 'good', callId: 'c_9' },
  legOpts: { playoutDelayMs?: number } = {},
  leadMs?: number,
) {
  const s = await server({ leadMs });
  const leg = await TwilioCallerLeg.connect({
    ...legOpts,
    url: s.url,
    parameters,
    callSid: 'CA0123456789abcdef0123456789abcdef',
    accountSid: 'AC0123456789abcdef0123456789abcdef',
  });
  cleanups.push(async () => void (await leg.terminate()));
  const accepted = await s.next();
  if (!accepted) throw new Error('not accepted');
  cleanups.push(() => accepted.transport.close('test over'));
  return { leg, ...accepted };
}

const STREAM_SID = 'MZ0123456789abcdef0123456789abcdef';

/** Twilio's `start` message for STREAM_SID, with the TwiML's custom parameters. */
function startMessage(customParameters: Record<string, string>) {
  return {
    event: 'start',
    sequenceNumber: '1',
    streamSid: STREAM_SID,
    start: {
      streamSid: STREAM_SID,
      accountSid: 'AC1',
      callSid: 'CA1',
      tracks: ['inbound'],
      customParameters,
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
  };
}

/** A hand-driven "Twilio" on a raw socket: the test decides what it sends and when it echoes. */
async function rawTwilio(opts: { clock?: () => number } = {}) {
  const s = await server(opts);
  const raw = new WebSocket(s.url);
  const received: Record<string, unknown>[] = [];
  raw.on('message', (data) => received.push(JSON.parse(String(data)) as Record<string, unknown>));
  await new Promise((r) => raw.once('open', r));
  cleanups.push(() => raw.terminate());
  raw.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
  const send = (msg: unknown) => raw.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  const start = startMessage({ token: 'good' });
  return { raw, send, start, received, next: s.next };
}

/** Collects the caller frames the transport delivers until audio() ends. */
function collect(t: TwilioMediaStreamTransport) {
  const frames: AudioFrame[] = [];
  const done = (async () => {
    for await (const f of t.audio()) frames.push(f);
  })();
  return { frames, done };
}

describe('TwilioMediaStreamTransport.accept', () => {
  it('refuses a wrong token with 1008 and no transport', async () => {
    const s = await server();
    const leg = await TwilioCallerLeg.connect({ url: s.url, parameters: { token: 'forged' } });
    expect(await s.next()).toBeNull();
    expect((await leg.closed).code).toBe(1008);
  });

  it('closes with 1008 when no start arrives in time', async () => {
    const s = await server({ startTimeoutMs: 150 });
    const raw = new WebSocket(s.url);
    const closed = new Promise<number>((r) => raw.once('close', (code) => r(code)));
    await new Promise((r) => raw.once('open', r));
    raw.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
    const t0 = performance.now();
    expect(await s.next()).toBeNull();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(100);
    expect(await closed).toBe(1008);
  });

  it('hands over the start message: sids, parameters and media format', async () => {
    const { start, transport, leg } = await call();
    expect(start.streamSid).toMatch(/^MZ[0-9a-f]{32}$/);
    expect(start.streamSid).toBe(leg.streamSid);
    expect(transport.streamSid).toBe(leg.streamSid);
    expect(start.callSid).toBe('CA0123456789abcdef0123456789abcdef');
    expect(start.accountSid).toBe('AC0123456789abcdef0123456789abcdef');
    expect(start.customParameters).toEqual({ token: 'good', callId: 'c_9' });
    expect(start.mediaFormat).toEqual({ encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 });
    expect(transport.kind).toBe('twilio');
    expect(transport.sampleRate).toBe(8000);
  });
});

describe('TwilioMediaStreamTransport', () => {
  it('delivers caller speech as 8 kHz frames stamped with the media timestamps', async () => {
    const { transport, leg } = await call();
    const { frames } = collect(transport);
    await sleep(100);
    const speech = tone(200);
    const firstChunk = leg.sentChunks + 1;
    await leg.say(speech);
    await sleep(60);

    // One frame per media message, 20 ms apart on the stream's clock.
    expect(frames.length).toBeGreaterThanOrEqual(15);
    for (const [i, f] of frames.entries()) {
      expect(f.sampleRate).toBe(8000);
      expect(f.pcm.length).toBe(160);
      if (i) expect(f.timestampMs - frames[i - 1]!.timestampMs).toBe(20);
    }
    const at = frames.findIndex((f) => f.timestampMs === firstChunk * 20);
    expect(at).toBeGreaterThan(0);
    const got = new Int16Array(frames.slice(at, at + 10).flatMap((f) => Array.from(f.pcm)));
    // Exactly what mu-law carries, and close to what was said.
    expect(got).toEqual(roundTrip(speech));
    for (let i = 0; i < speech.length; i++) expect(Math.abs(got[i]! - speech[i]!)).toBeLessThanOrEqual(Math.abs(speech[i]!) / 16 + 8);
    // Before and after: only quiet line noise.
    expect(frames[at - 1]!.pcm.every((s) => Math.abs(s) < 64)).toBe(true);
    expect(frames[at + 10]?.pcm.every((s) => Math.abs(s) < 64)).toBe(true);
  });

  it('paces agent audio in 20 ms media messages and resolves a mark only after the caller heard the audio', async () => {
    // Without a lead, so every frame goes as it plays (the lead is the next test).
    const { transport, leg } = await call(undefined, {}, 0);
    const played: AudioFrame[] = [];
    transport.onPlayed((f) => played.push(f));
    const speech = tone(400, 6000, 300);
    const t0 = performance.now();
    transport.send({ pcm: speech, sampleRate: 8000, timestampMs: 0 });
    const ok = await transport.mark('sentence-1');
    const resolvedAt = leg.now();
    expect(ok).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(395);

    // The leg played all of it, in real time, and echoed the mark after the last frame ended.
    expect(leg.heard).toHaveLength(20);
    expect(leg.heardMs()).toBe(400);
    const lastEnds = leg.heard[19]!.atMs + 20;
    expect(leg.marks).toEqual([{ name: 'sentence-1', atMs: expect.any(Number), played: true }]);
    expect(leg.marks[0]!.atMs).toBeGreaterThanOrEqual(lastEnds - 1);
    expect(resolvedAt).toBeGreaterThanOrEqual(leg.marks[0]!.atMs);
    expect(new Int16Array(leg.heard.flatMap((h) => Array.from(h.pcm)))).toEqual(roundTrip(speech));

    // Paced, not bursted: messages about 20 ms apart, never faster than real time overall (single gaps are not
    // bounded: a loaded test machine may stall one).
    const pacing = leg.pacing();
    expect(pacing.count).toBe(19);
    expect(pacing.p50Ms).toBeGreaterThan(12);
    expect(pacing.p50Ms).toBeLessThan(28);
    expect(leg.outboundGapsMs.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(300);
    expect(leg.heard[19]!.atMs - leg.heard[0]!.atMs).toBeGreaterThanOrEqual(19 * 20 - 1);
    expect(leg.protocolErrors).toEqual([]);

    // The recording: silence until the first frame, then the audio where it played.
    const wav = parseWav(leg.heardWav());
    expect(wav.sampleRate).toBe(8000);
    const firstAt = Math.round(leg.heard[0]!.atMs * 8);
    expect(wav.pcm.length).toBe(Math.round(leg.heard[19]!.atMs * 8) + 160);
    expect(wav.pcm.subarray(0, firstAt).every((x) => x === 0)).toBe(true);
    expect(wav.pcm.subarray(firstAt, firstAt + 160)).toEqual(leg.heard[0]!.pcm);

    // onPlayed: every frame, stamped on the caller's clock (ms since start), near when the leg played it.
    expect(played).toHaveLength(20);
    for (const [i, f] of played.entries()) expect(Math.abs(f.timestampMs - leg.heard[i]!.atMs)).toBeLessThan(40);
  });

  // Pacing is checked in virtual time, against a model of Twilio's playback (virtualTwilio): on a busy machine the
  // real leg's gaps and the service's timers drift, and a stall made with a busy loop is not the only one.
  it('sends agent audio 200 ms ahead, so the caller hears a stall of the service shorter than that as nothing at all', async () => {
    const stalled = async (leadMs: number | undefined) => {
      const v = await virtualTwilio(leadMs);
      const played: { frame: AudioFrame; at: number }[] = [];
      v.transport.onPlayed((frame) => played.push({ frame, at: v.transport.now() }));
      v.transport.send({ pcm: tone(1000), sampleRate: 8000, timestampMs: 0 });
      const marked = v.transport.mark('s');
      v.clock.advance(300);
      // The service stops for 150 ms (its timers fire late, at once); Twilio's playout keeps its schedule.
      v.stall(150);
      v.clock.advance(1000);
      expect(await marked).toBe(true);
      expect(v.heardMs()).toBe(1000);
      return { v, played };
    };

    const ahead = await stalled(undefined);
    // Each frame goes 200 ms before its play time, the first 200 ms (eleven frames) at once; the frames due during
    // the stall go when it ends, and never more than 200 ms ahead.
    const sentAt = ahead.v.media.map((m) => m.sentAt);
    expect(sentAt).toHaveLength(50);
    expect(sentAt.slice(0, 11).every((t) => t === 0)).toBe(true);
    for (const [i, t] of sentAt.entries()) {
      const due = Math.max(0, i * 20 - 200);
      expect(t, `frame ${i}`).toBeGreaterThanOrEqual(due);
      expect(t, `frame ${i}`).toBeLessThanOrEqual(due > 300 && due < 450 ? 450 : due + 5);
    }
    // Heard unbroken: every frame started as the one before ended.
    expect(ahead.v.heardGapsMs).toHaveLength(49);
    expect(ahead.v.heardGapsMs.every((g) => g === 20)).toBe(true);
    // onPlayed reports each frame once its play time has come, stamped with that time, not when it was sent.
    expect(ahead.played).toHaveLength(50);
    for (const [i, p] of ahead.played.entries()) {
      expect(p.frame.timestampMs).toBe(ahead.v.heard[i]!.atMs);
      expect(p.at).toBeGreaterThanOrEqual(p.frame.timestampMs);
    }

    // Sent as it plays, the same stall is a hole of over 100 ms in what the caller hears.
    const onTime = await stalled(0);
    expect(Math.max(...onTime.v.heardGapsMs)).toBeGreaterThan(100);
  });

  it('times the gaps between media messages of an utterance as sent: 20 ms on time, a stall as one long gap', async () => {
    const gaps: number[] = [];
    const v = await virtualTwilio(undefined, (ms) => gaps.push(ms));
    // Two sentences queued back to back (30 and 20 frames), each followed by its mark.
    v.transport.send({ pcm: tone(600), sampleRate: 8000, timestampMs: 0 });
    const first = v.transport.mark('a');
    v.transport.send({ pcm: tone(400), sampleRate: 8000, timestampMs: 0 });
    const second = v.transport.mark('b');
    v.clock.advance(300);
    // The event loop stops for 100 ms: the frame due at 320 goes at 400, and those after it at once.
    v.stall(100);
    v.clock.advance(1500);
    expect([await first, await second]).toEqual([true, true]);
    expect(v.media).toHaveLength(50);
    // Gaps within each sentence only (the mark ends one): 29 + 19, never the time across a mark.
    expect(gaps).toHaveLength(48);
    expect(gaps.filter((g) => g > 40)).toEqual([100]);
    expect(gaps.every((g) => g === 0 || g === 20 || g === 100)).toBe(true);
    // After a clear the next utterance starts afresh: its first frame is not timed against the cleared one.
    gaps.length = 0;
    v.transport.send({ pcm: tone(400), sampleRate: 8000, timestampMs: 0 });
    v.clock.advance(300);
    v.transport.clear();
    v.clock.advance(1000);
    v.transport.send({ pcm: tone(100), sampleRate: 8000, timestampMs: 0 });
    v.clock.advance(200);
    expect(gaps.length).toBeGreaterThan(0);
    expect(gaps.every((g) => g <= 20)).toBe(true);
  });

  it('sends agent audio due while the loop is busy with I/O as caller messages arrive, not when it reaches its timers', async () => {
    const gapsOf = async (callerEveryMs?: number) => {
      const gaps: number[] = [];
      const v = await virtualTwilio(undefined, (ms) => gaps.push(ms));
      v.transport.send({ pcm: tone(1000), sampleRate: 8000, timestampMs: 0 });
      const marked = v.transport.mark('s');
      v.clock.advance(300);
      // 200 ms in which no timer runs; with caller messages every 20 ms, or none at all (a stopped loop).
      v.stall(200, callerEveryMs);
      v.clock.advance(1000);
      expect(await marked).toBe(true);
      return gaps;
    };
    // Each caller message lets the frames due by then go: no gap over 20 ms.
    expect(Math.max(...(await gapsOf(20)))).toBe(20);
    // Without them the frames wait for the timer: one 200 ms gap.
    expect(Math.max(...(await gapsOf()))).toBe(200);
  });

  it('clear() drops the rest, sends clear, fails pending marks and ignores their echoes', async () => {
    const v = await virtualTwilio();
    let playedFrames = 0;
    v.transport.onPlayed(() => playedFrames++);
    v.transport.send({ pcm: tone(1000), sampleRate: 8000, timestampMs: 0 });
    const first = v.transport.mark('s0');
    v.clock.advance(200);
    v.transport.clear();
    expect(await first).toBe(false);
    expect(v.clears).toEqual([200]);
    const sentBeforeClear = v.media.length;
    // Twilio played what started before the clear and dropped the rest.
    const heardAfterClear = v.heardMs();
    expect(heardAfterClear).toBe(220);
    expect(playedFrames * 20).toBeLessThanOrEqual(heardAfterClear);
    v.clock.advance(250);
    // Nothing more was sent or heard.
    expect(v.media).toHaveLength(sentBeforeClear);
    expect(v.heardMs()).toBe(heardAfterClear);

    // Audio after a clear plays again; its mark holds until Twilio's echo says it played.
    const t0 = v.clock.now();
    v.transport.send({ pcm: tone(200), sampleRate: 8000, timestampMs: 0 });
    let resolvedAt: number | undefined;
    const second = v.transport.mark('s1').then((played) => {
      resolvedAt = v.clock.now();
      return played;
    });
    await v.clock.advanceAsync(199);
    expect(resolvedAt).toBeUndefined();
    await v.clock.advanceAsync(100);
    expect(await second).toBe(true);
    expect(resolvedAt! - t0).toBeGreaterThanOrEqual(200);
    expect(v.heardMs()).toBe(heardAfterClear + 200);
  });

  it('fails a mark already handed to Twilio on clear(), and its echo does not resolve a later mark of that name', async () => {
    // Twilio plays 200 ms behind what it receives, so the mark is at Twilio, unplayed, when clear() comes.
    const { transport, leg } = await call(undefined, { playoutDelayMs: 200 });
    transport.send({ pcm: tone(100), sampleRate: 8000, timestampMs: 0 });
    const first = transport.mark('s0');
    await sleep(160);
    expect(leg.marks).toEqual([]);
    transport.clear();
    expect(await first).toBe(false);
    // The next reply reuses the name (the session numbers marks per reply).
    transport.send({ pcm: tone(100), sampleRate: 8000, timestampMs: 0 });
    const t0 = performance.now();
    expect(await transport.mark('s0')).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(295);
    expect(leg.marks.map((m) => [m.name, m.played])).toEqual([
      ['s0', false],
      ['s0', true],
    ]);
  });

  it('the caller leg keeps real time: it catches up after a stalled event loop, never runs ahead', async () => {
    const { transport, leg } = await call();
    const { frames } = collect(transport);
    await sleep(50);
    const stallUntil = performance.now() + 120;
    while (performance.now() < stallUntil) {
      // Busy: timers cannot fire.
    }
    expect(leg.sentChunks).toBeLessThanOrEqual(Math.floor(leg.now() / 20));
    await sleep(15);
    const due = Math.floor(leg.now() / 20);
    expect(leg.sentChunks).toBeLessThanOrEqual(due);
    expect(leg.sentChunks).toBeGreaterThanOrEqual(due - 1);
    await sleep(40);
    // Every chunk arrived, numbered without holes.
    expect(frames.map((f) => f.timestampMs)).toEqual(frames.map((_, i) => (i + 1) * 20));
  });

  it('passes dtmf digits to onDtmf', async () => {
    const { transport, leg } = await call();
    const digits: string[] = [];
    transport.onDtmf((d) => digits.push(d));
    leg.pressDigit('5');
    leg.pressDigit('#');
    await sleep(50);
    expect(digits).toEqual(['5', '#']);
  });

  it('ends audio() and fires onHangup once when the caller hangs up', async () => {
    const { transport, leg } = await call();
    let hangups = 0;
    transport.onHangup(() => hangups++);
    const { frames, done } = collect(transport);
    await sleep(100);
    const pendingMark = (() => {
      transport.send({ pcm: tone(2000), sampleRate: 8000, timestampMs: 0 });
      return transport.mark('long');
    })();
    await leg.hangup();
    await done;
    expect(frames.length).toBeGreaterThan(2);
    expect(await pendingMark).toBe(false);
    await sleep(20);
    expect(hangups).toBe(1);
  });

  it('ends cleanly when the connection drops without a stop', async () => {
    const { transport, leg } = await call();
    let hangups = 0;
    transport.onHangup(() => hangups++);
    const { done } = collect(transport);
    await sleep(60);
    await leg.terminate();
    await done;
    await sleep(20);
    expect(hangups).toBe(1);
    expect(await transport.mark('late')).toBe(false);
    await transport.close('after drop');
  });

  it('close(reason) closes the socket with 1000 and does not report a hangup', async () => {
    const { transport, leg } = await call();
    let hangups = 0;
    transport.onHangup(() => hangups++);
    await transport.close('agent ended the call');
    expect(await leg.closed).toEqual({ code: 1000, reason: 'agent ended the call' });
    expect(hangups).toBe(0);
  });

  it('ignores the echo of a cleared mark even when a new mark of that name is already at Twilio', async () => {
    const twilio = await rawTwilio();
    twilio.send(twilio.start);
    const accepted = await twilio.next();
    if (!accepted) throw new Error('not accepted');
    const { transport } = accepted;
    cleanups.push(() => transport.close('test over'));
    const marksReceived = () => twilio.received.filter((m) => m.event === 'mark');
    const until = async (cond: () => boolean) => {
      while (!cond()) await sleep(5);
    };
    transport.send({ pcm: tone(40), sampleRate: 8000, timestampMs: 0 });
    const first = transport.mark('s0');
    await until(() => marksReceived().length === 1);
    // The mark follows its two media messages.
    expect(twilio.received.map((m) => m.event)).toEqual(['media', 'media', 'mark']);
    expect(twilio.received[2]).toEqual({ event: 'mark', streamSid: STREAM_SID, mark: { name: 's0' } });
    transport.clear();
    expect(await first).toBe(false);
    const second = transport.mark('s0');
    await until(() => marksReceived().length === 2);
    expect(twilio.received.map((m) => m.event).slice(3)).toEqual(['clear', 'mark']);
    expect(twilio.received[3]).toEqual({ event: 'clear', streamSid: STREAM_SID });
    let settled: boolean | undefined;
    void second.then((v) => (settled = v));
    // Twilio's late echo of the cleared mark.
    twilio.send({ event: 'mark', sequenceNumber: '5', streamSid: STREAM_SID, mark: { name: 's0' } });
    await sleep(60);
    expect(settled).toBeUndefined();
    twilio.send({ event: 'mark', sequenceNumber: '6', streamSid: STREAM_SID, mark: { name: 's0' } });
    expect(await second).toBe(true);
  });

  it('survives malformed JSON, binary frames and unknown events', async () => {
    const twilio = await rawTwilio();
    twilio.send('{not json');
    twilio.send(twilio.start);
    const accepted = await twilio.next();
    if (!accepted) throw new Error('not accepted');
    const { transport } = accepted;
    cleanups.push(() => transport.close('test over'));
    const { frames } = collect(transport);
    twilio.send('][');
    twilio.raw.send(Buffer.from([1, 2, 3]), { binary: true });
    twilio.send({ event: 'teleport' });
    twilio.send({ event: 'media', media: 'nope' });
    twilio.send('null');
    const payload = Buffer.from(new Uint8Array(160).fill(0xff)).toString('base64');
    twilio.send({
      event: 'media',
      sequenceNumber: '2',
      streamSid: STREAM_SID,
      media: { track: 'inbound', chunk: '1', timestamp: '20', payload },
    });
    await sleep(50);
    expect(transport.ignoredMessages).toBe(5);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.timestampMs).toBe(20);
    expect(frames[0]!.pcm.every((x) => x === 0)).toBe(true);
  });
});

/**
 * A transport accepted on a fake socket, paced on a ManualClock, and a model of Twilio's side of it: a media message
 * plays when it arrives or when the audio queued before it ends, whichever is later (later than that end is a hole
 * the caller hears), a mark is echoed once the audio before it has played, and clear drops what has not started
 * and echoes the marks it drops. `stall(ms)` stops the service for that long: its timers and the echoes it would
 * read wait, then run at once, while Twilio's clock goes on.
 */
async function virtualTwilio(leadMs?: number, onFrameGap?: (ms: number) => void) {
  const clock = new ManualClock();
  let stalled = false;
  const held: (() => void)[] = [];
  const pacing: Clock = {
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(() => (stalled ? held.push(fn) : fn()), ms),
    clearTimeout: (timer) => clock.clearTimeout(timer),
  };
  const socket = fakeSocket();
  const accepted = TwilioMediaStreamTransport.accept(socket as unknown as WebSocket, {
    authorize: async () => true,
    leadMs,
    clock: () => clock.now(),
    pacing,
    ...(onFrameGap && { onFrameGap }),
  });
  const start = startMessage({});
  socket.emit('message', Buffer.from(JSON.stringify(start)), false);
  const transport = (await accepted)!.transport;

  const media: { sentAt: number }[] = [];
  const heard: { atMs: number }[] = [];
  const heardGapsMs: number[] = [];
  const clears: number[] = [];
  let pendingEchoes: { name: string; timer: unknown }[] = [];
  /** When the audio Twilio holds has all played. */
  let playingUntil = 0;
  let lastMedia = false;
  const echo = (name: string, inMs: number) => {
    const entry = { name, timer: undefined as unknown };
    // The service reads the echo when its event loop runs.
    entry.timer = pacing.setTimeout(() => {
      pendingEchoes = pendingEchoes.filter((e) => e !== entry);
      socket.emit('message', Buffer.from(JSON.stringify({ event: 'mark', streamSid: STREAM_SID, mark: { name } })), false);
    }, inMs);
    pendingEchoes.push(entry);
  };
  const send = socket.send.bind(socket);
  socket.send = (data: unknown, options?: unknown) => {
    send(data, options);
    const now = clock.now();
    const msg = JSON.parse(String(data)) as { event: string; mark?: { name: string } };
    if (msg.event === 'media') {
      media.push({ sentAt: now });
      if (lastMedia) heardGapsMs.push(20 + Math.max(0, now - playingUntil));
      const at = Math.max(now, playingUntil);
      heard.push({ atMs: at });
      playingUntil = at + 20;
      lastMedia = true;
    } else if (msg.event === 'mark') {
      echo(msg.mark!.name, Math.max(0, playingUntil - now));
      lastMedia = false;
    } else if (msg.event === 'clear') {
      clears.push(now);
      heard.splice(heard.findIndex((h) => h.atMs > now) >>> 0);
      playingUntil = now;
      for (const e of pendingEchoes.splice(0)) {
        pacing.clearTimeout(e.timer);
        echo(e.name, 0);
      }
      lastMedia = false;
    }
  };
  /**
   * With `callerEveryMs`, the caller's media messages still arrive during the stall (the loop is busy with I/O, not
   * stopped: it reads sockets but does not reach its timers).
   */
  const stall = (ms: number, callerEveryMs?: number) => {
    stalled = true;
    if (!callerEveryMs) clock.advance(ms);
    else
      for (let t = callerEveryMs; t <= ms; t += callerEveryMs) {
        clock.advance(callerEveryMs);
        const media = {
          event: 'media',
          streamSid: STREAM_SID,
          media: { track: 'inbound', timestamp: String(clock.now()), payload: 'f/9/f38=' },
        };
        socket.emit('message', Buffer.from(JSON.stringify(media)), false);
      }
    stalled = false;
    for (const fn of held.splice(0)) fn();
  };
  /** Audio that has started playing by now, in ms. */
  const heardMs = () => heard.filter((h) => h.atMs <= clock.now()).length * 20;
  return { clock, transport, stall, media, heard, heardGapsMs, clears, heardMs };
}

/** A socket the test feeds by hand: what the transport sends is kept as it was handed to ws. */
function fakeSocket() {
  const socket = Object.assign(new EventEmitter(), {
    readyState: 1,
    bufferedAmount: 0,
    sent: [] as { data: unknown; options: unknown }[],
    send(data: unknown, options?: unknown) {
      socket.sent.push({ data, options });
    },
    close() {
      socket.readyState = 3;
      socket.emit('close', 1000, Buffer.alloc(0));
    },
    terminate() {
      socket.close();
    },
  });
  return socket;
}

function fakeTransport(streamSid = STREAM_SID, leadMs = 0) {
  const socket = fakeSocket();
  const start: TwilioStart = {
    streamSid,
    callSid: 'CA1',
    accountSid: 'AC1',
    customParameters: {},
    mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    tracks: ['inbound'],
  };
  const transport = new TwilioMediaStreamTransport(socket as unknown as WebSocket, start, leadMs, { clock: () => 10_000 });
  const frames: AudioFrame[] = [];
  void (async () => {
    for await (const f of transport.audio()) frames.push(f);
  })();
  const deliver = async (text: string) => {
    socket.emit('message', Buffer.from(text), false);
    await sleep(0);
  };
  return { socket, transport, frames, deliver };
}

describe('TwilioMediaStreamTransport media messages', () => {
  const pcm = tone(20, 12000);
  const payload = muLawBase64(pcm);
  const expected = Array.from(muLawDecode(Buffer.from(payload, 'base64')));

  it('reads media messages however their fields are ordered and spaced, as JSON.parse reads them', async () => {
    const variants = [
      // Twilio's order, and the simulated leg's.
      `{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"${payload}"},"streamSid":"${STREAM_SID}"}`,
      `{"event":"media","sequenceNumber":"4","streamSid":"${STREAM_SID}","media":{"track":"inbound","chunk":"2","timestamp":"40","payload":"${payload}"}}`,
      `\n { "media" : { "payload" :\t"${payload}" , "timestamp":"60" } ,"event": "media" }\r\n`,
      // Read by JSON.parse: an escape, a number timestamp, an unknown nested value, a repeated field.
      `{"event":"media","streamSid":"MZ\\u0031","media":{"timestamp":"80","payload":"${payload}"}}`,
      // An escape inside the payload (the scan finds its end natively, and leaves it to JSON.parse).
      `{"event":"media","media":{"timestamp":"90","payload":"\\u00${payload.charCodeAt(0).toString(16)}${payload.slice(1)}"}}`,
      `{"event":"media","media":{"timestamp":100,"payload":"${payload}"}}`,
      `{"event":"media","extra":{"a":[1,2]},"media":{"timestamp":"120","payload":"${payload}"}}`,
      `{"event":"media","media":{"timestamp":"1","timestamp":"140","payload":"${payload}"}}`,
      // No timestamp: continues from the previous frame.
      `{"event":"media","media":{"payload":"${payload}"}}`,
      // Base64 without its padding (Buffer.from reads it).
      `{"event":"media","media":{"timestamp":"180","payload":"${payload.replace(/=+$/, '')}"}}`,
    ];
    const { frames, deliver, transport } = fakeTransport();
    for (const v of variants) await deliver(v);
    expect(frames.map((f) => f.timestampMs)).toEqual([20, 40, 60, 80, 90, 100, 120, 140, 160, 180]);
    for (const f of frames) expect(Array.from(f.pcm)).toEqual(expected);
    expect(transport.ignoredMessages).toBe(0);
  });

  it('ignores what JSON.parse would have it ignore: other tracks, no payload, other events, not an object', async () => {
    const { frames, deliver, transport } = fakeTransport();
    for (const v of [
      `{"event":"media","media":{"track":"outbound","timestamp":"20","payload":"${payload}"}}`,
      `{"event":"media","media":{"timestamp":"20"}}`,
      `{"event":"media","media":"${payload}"}`,
      `{"event":"nothing","media":{"timestamp":"20","payload":"${payload}"}}`,
      `{"event":"media","media":{"timestamp":"20","payload":"${payload}"}} x`,
      `{"event":"media","media":{"timestamp":"20","payload":"${payload}"}`,
    ])
      await deliver(v);
    expect(frames).toEqual([]);
    expect(transport.ignoredMessages).toBe(6);
  });

  it('refuses a payload over a second of audio either way', async () => {
    const long = muLawBase64(tone(1100));
    const { deliver, socket } = fakeTransport();
    await deliver(`{"event":"media","media":{"timestamp":"20","payload":"${long}"}}`);
    expect(socket.readyState).toBe(3);
  });

  it('sends agent audio as the bytes JSON.stringify gives for a media message', () => {
    for (const sid of [STREAM_SID, 'MZ "quoted" \\ é']) {
      // Sent ahead (a lead of a second): all three frames go at once.
      const { socket, transport } = fakeTransport(sid, 1000);
      for (const ms of [20, 40]) transport.send({ pcm: tone(ms, 9000, 300), sampleRate: 8000, timestampMs: 0 });
      const media = socket.sent.filter((s) => String(s.data).includes('"media"'));
      expect(media).toHaveLength(3);
      const frames = [tone(20, 9000, 300), tone(40, 9000, 300).subarray(0, 160), tone(40, 9000, 300).subarray(160)];
      media.forEach((m, i) => {
        expect(Buffer.isBuffer(m.data)).toBe(true);
        expect(m.options).toEqual({ binary: false });
        expect((m.data as Buffer).toString('utf8')).toBe(
          JSON.stringify({ event: 'media', streamSid: sid, media: { payload: muLawBase64(frames[i]!) } }),
        );
      });
      void transport.close('over');
    }
  });
});

describe('parseConnectStream', () => {
  it('reads the stream URL and parameters of the TwiML we emit, unescaping XML', () => {
    const twiml =
      '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://agent.example.com/twilio/media?a=1&amp;b=2">' +
      '<Parameter name="tenantId" value="t_42"/><Parameter name="token" value="a&lt;b&gt;c&quot;d&apos;e&#38;f&#x41;"/></Stream></Connect></Response>';
    expect(parseConnectStream(twiml)).toEqual({
      url: 'wss://agent.example.com/twilio/media?a=1&b=2',
      parameters: { tenantId: 't_42', token: `a<b>c"d'e&fA` },
    });
  });

  it('accepts whitespace, single quotes, comments and a self-closing stream', () => {
    const twiml = `<?xml version="1.0"?>\n<Response>\n  <!-- <Connect><Stream url="wss://wrong"/></Connect> -->\n  <Connect action='/after'>\n    <Stream name = 'x' url='wss://a.example/s' />\n  </Connect>\n</Response>`;
    expect(parseConnectStream(twiml)).toEqual({ url: 'wss://a.example/s', parameters: {} });
  });

  it('returns null without a <Connect><Stream>', () => {
    expect(parseConnectStream('<Response><Start><Stream url="wss://fork"/></Start><Say>Hi</Say></Response>')).toBeNull();
    expect(parseConnectStream('<Response><Dial><Sip>sip:x@y</Sip></Dial></Response>')).toBeNull();
    expect(parseConnectStream('not xml')).toBeNull();
  });

  it('keeps only parameters that are direct children of the stream', () => {
    const twiml =
      '<Response><Connect><Stream url="wss://x"><Parameter name="a" value="1"></Parameter><Parameter name="b" value=""/></Stream><Parameter name="c" value="3"/></Connect></Response>';
    expect(parseConnectStream(twiml)).toEqual({ url: 'wss://x', parameters: { a: '1', b: '' } });
  });
});

describe('TwilioMediaStreamTransport against a flood', () => {
  const media = (i: number, timestamp: string) =>
    JSON.stringify({
      event: 'media',
      sequenceNumber: String(i + 2),
      streamSid: STREAM_SID,
      media: { track: 'inbound', chunk: String(i + 1), timestamp, payload: Buffer.alloc(160, 0xff).toString('base64') },
    });

  it('60,000 media messages at once: 1.5 s of audio is taken, stamped within the wall clock, then the stream is closed with 1008', async () => {
    // The wall clock stands still: the flood is all ahead of it.
    const twilio = await rawTwilio({ clock: () => 1000 });
    const closed = new Promise<number>((r) => twilio.raw.once('close', (code) => r(code)));
    twilio.send(twilio.start);
    const accepted = await twilio.next();
    if (!accepted) throw new Error('not accepted');
    const { transport } = accepted;
    const violations: (string | undefined)[] = [];
    transport.onHangup((v) => violations.push(v));
    const { frames, done } = collect(transport);
    // Made-up timestamps hours ahead must not place audio there either.
    for (let i = 0; i < 60_000; i++) twilio.raw.send(media(i, String(3_600_000 + i * 20)));
    expect(await closed).toBe(1008);
    await done;
    expect(frames).toHaveLength(75);
    expect(Math.max(...frames.map((f) => f.timestampMs))).toBeLessThanOrEqual(1500);
    expect(violations).toEqual(['audio sent faster than real time']);
  });

  it('a flood of other messages (marks nobody asked for) is closed with 1008 at the message rate', async () => {
    const twilio = await rawTwilio({ clock: () => 1000 });
    const closed = new Promise<number>((r) => twilio.raw.once('close', (code) => r(code)));
    twilio.send(twilio.start);
    const accepted = await twilio.next();
    if (!accepted) throw new Error('not accepted');
    const violations: (string | undefined)[] = [];
    accepted.transport.onHangup((v) => violations.push(v));
    const mark = JSON.stringify({ event: 'mark', streamSid: STREAM_SID, mark: { name: 'nobody-asked' } });
    for (let i = 0; i < 60_000; i++) twilio.raw.send(mark);
    expect(await closed).toBe(1008);
    expect(accepted.transport.ignoredMessages).toBeLessThanOrEqual(2500);
    expect(violations).toEqual([expect.stringMatching(/messages a second/)]);
  });

  it('refuses a peer that floods before its start message', async () => {
    const s = await server();
    const raw = new WebSocket(s.url);
    const closed = new Promise<number>((r) => raw.once('close', (code) => r(code)));
    await new Promise((r) => raw.once('open', r));
    for (let i = 0; i < 1000; i++) raw.send(JSON.stringify({ event: 'connected' }));
    expect(await s.next()).toBeNull();
    expect(await closed).toBe(1008);
  });
});
