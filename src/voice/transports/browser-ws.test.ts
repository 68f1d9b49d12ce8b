// Tests for BrowserTransport over a real websocket, with a raw `ws` client playing the browser.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { type LiveMessage, liveMessageSchemas, type LiveMessageType } from '../../lib/live-messages.js';
import type { AudioFrame } from '../audio.js';
import { BrowserTransport, type BrowserTransportOptions, holdEarlyMessages } from './browser-ws.js';
import { setTimeout as sleep } from 'node:timers/promises';

const ramp = (samples: number, from = 0) => Int16Array.from({ length: samples }, (_, i) => (((from + i) * 37) % 30000) - 15000);
const le = (pcm: Int16Array) => {
  const b = Buffer.alloc(pcm.length * 2);
  pcm.forEach((s, i) => b.writeInt16LE(s, i * 2));
  return b;
};

type Received = { at: number } & ({ binary: Buffer } | { json: Record<string, unknown> });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A BrowserTransport on the server side and a raw client recording everything it receives. */
async function connect(opts: BrowserTransportOptions = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const transportReady = new Promise<BrowserTransport>((r) => wss.once('connection', (socket) => r(new BrowserTransport(socket, opts))));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/browser`);
  const received: Received[] = [];
  client.on('message', (data: RawData, isBinary: boolean) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    received.push(
      isBinary
        ? { at: performance.now(), binary: buf }
        : { at: performance.now(), json: JSON.parse(buf.toString('utf8')) as Record<string, unknown> },
    );
  });
  const clientClosed = new Promise<number>((r) => client.once('close', (code) => r(code)));
  await new Promise((r) => client.once('open', r));
  const transport = await transportReady;
  const frames: AudioFrame[] = [];
  const audioDone = (async () => {
    for await (const f of transport.audio()) frames.push(f);
  })();
  cleanups.push(async () => {
    await transport.close('test over');
    client.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });
  const json = () => received.flatMap((m) => ('json' in m ? [m.json] : []));
  const binary = () => received.flatMap((m) => ('binary' in m ? [m] : []));
  return { transport, client, received, json, binary, frames, audioDone, clientClosed };
}

describe('BrowserTransport', () => {
  it('re-cuts binary PCM16LE of any length into 20 ms frames stamped from the samples received', async () => {
    const { transport, client, frames } = await connect();
    expect(transport.kind).toBe('browser');
    expect(transport.sampleRate).toBe(16000);
    const pcm = ramp(16000 / 10); // 100 ms
    const bytes = le(pcm);
    // Odd-length pieces: a sample split across two messages must keep its bytes together.
    for (const [from, to] of [
      [0, 333],
      [333, 1000],
      [1000, 1001],
      [1001, 2501],
      [2501, 3200],
    ] as const)
      client.send(bytes.subarray(from, to), { binary: true });
    await sleep(60);
    expect(frames.map((f) => f.timestampMs)).toEqual([0, 20, 40, 60, 80]);
    for (const f of frames) {
      expect(f.sampleRate).toBe(16000);
      expect(f.pcm.length).toBe(320);
    }
    expect(new Int16Array(frames.flatMap((f) => Array.from(f.pcm)))).toEqual(pcm);
  });

  it('passes digits to onDtmf and answers bad control messages in-band, then goes on', async () => {
    const { transport, client, json, frames } = await connect();
    const digits: string[] = [];
    transport.onDtmf((d) => digits.push(d));
    client.send(JSON.stringify({ type: 'dtmf', digit: '7' }));
    client.send(JSON.stringify({ type: 'dtmf', digit: 'x' }));
    client.send('{oops');
    client.send(JSON.stringify({ type: 'dance' }));
    client.send(JSON.stringify([1, 2]));
    client.send(JSON.stringify({ type: 'dtmf', digit: '#' }));
    await sleep(50);
    expect(digits).toEqual(['7', '#']);
    const errors = json().filter((m) => m.type === 'error');
    expect(errors).toHaveLength(4);
    for (const e of errors) expect(e.error).toEqual({ code: 'bad_message', message: expect.any(String) });
    // Still alive: audio keeps flowing.
    client.send(le(ramp(320)), { binary: true });
    await sleep(30);
    expect(frames).toHaveLength(1);
  });

  it('refuses a binary message over 1 s of audio without buffering it', async () => {
    const { client, json, frames } = await connect();
    client.send(Buffer.alloc(32002), { binary: true });
    await sleep(40);
    expect(json()).toEqual([{ type: 'error', error: { code: 'bad_message', message: expect.stringMatching(/1 s/) } }]);
    expect(frames).toHaveLength(0);
    // Exactly 1 s is fine.
    client.send(le(ramp(16000)), { binary: true });
    await sleep(40);
    expect(frames).toHaveLength(50);
  });

  it('a caller sending 1 s messages as fast as it can: 1.5 s is taken, the rest dropped, then the socket is closed with 1008', async () => {
    // The wall clock stands still: everything the caller sends is ahead of it.
    const now = 5000;
    const { transport, client, json, frames, clientClosed, audioDone } = await connect({ clock: () => now });
    const violations: (string | undefined)[] = [];
    transport.onHangup((v) => violations.push(v));
    const second = le(ramp(16000));
    for (let i = 0; i < 60; i++) client.send(second, { binary: true });
    expect(await clientClosed).toBe(1008);
    await audioDone;
    // 1.5 s of 20 ms frames, whatever came after.
    expect(frames).toHaveLength(75);
    expect(frames.at(-1)!.timestampMs).toBe(1480);
    expect(transport.admission.droppedMs).toBeLessThanOrEqual(6500);
    expect(violations).toEqual(['audio sent faster than real time']);
    expect(json()).toContainEqual({ type: 'error', error: { code: 'media_policy', message: 'audio sent faster than real time' } });
  });

  it('a hang-up before anyone listens is not lost: a listener added later hears it, with its violation', async () => {
    const { transport, client, clientClosed } = await connect({ clock: () => 0 });
    for (let i = 0; i < 20; i++) client.send(le(ramp(16000)), { binary: true });
    expect(await clientClosed).toBe(1008);
    const violations: (string | undefined)[] = [];
    transport.onHangup((v) => violations.push(v));
    expect(violations).toEqual(['audio sent faster than real time']);
  });

  it('audio ahead of the wall clock is dropped, and taken again as the clock moves on; the call goes on', async () => {
    let now = 0;
    const { transport, client, frames, received } = await connect({ clock: () => now });
    let hangups = 0;
    transport.onHangup(() => hangups++);
    const pcm = ramp(3 * 16000);
    for (let i = 0; i < 3; i++) client.send(le(pcm.subarray(i * 16000, (i + 1) * 16000)), { binary: true });
    await sleep(60);
    expect(frames).toHaveLength(75);
    // What was taken is the start of what was sent, in order.
    expect(Array.from(frames[74]!.pcm)).toEqual(Array.from(pcm.subarray(74 * 320, 75 * 320)));
    now += 1000;
    // Odd-length messages, the second one cut: the dropped part is whole samples, so what follows still lines up.
    client.send(le(ramp(15001)).subarray(0, 30001), { binary: true });
    client.send(le(ramp(2001)).subarray(0, 4001), { binary: true });
    await sleep(60);
    expect(frames).toHaveLength(125);
    now += 1000;
    client.send(le(ramp(320)), { binary: true });
    await sleep(60);
    expect(frames).toHaveLength(126);
    expect(Array.from(frames[125]!.pcm)).toEqual(Array.from(ramp(320)));
    expect(hangups).toBe(0);
    expect(received.some((m) => 'json' in m)).toBe(false);
  });

  it('a flood of control messages is closed with 1008 after a person’s burst; few digits get through', async () => {
    const now = 0;
    const { transport, client, clientClosed } = await connect({ clock: () => now });
    const digits: string[] = [];
    const violations: (string | undefined)[] = [];
    transport.onDtmf((d) => digits.push(d));
    transport.onHangup((v) => violations.push(v));
    for (let i = 0; i < 5000; i++) client.send(JSON.stringify({ type: 'dtmf', digit: '1' }));
    expect(await clientClosed).toBe(1008);
    expect(digits.length).toBeLessThanOrEqual(40);
    expect(violations).toEqual([expect.stringMatching(/control messages/)]);
  });

  it('plays agent audio as paced binary frames and sends the mark after its audio, when played', async () => {
    const { transport, binary, json, received } = await connect();
    const played: AudioFrame[] = [];
    transport.onPlayed((f) => played.push(f));
    const pcm = ramp(16000 * 0.3 - 100); // 290 ms: the tail is padded to a whole frame for the mark
    const t0 = performance.now();
    transport.send({ pcm, sampleRate: 16000, timestampMs: 0 });
    const ok = await transport.mark('sentence-1');
    const resolvedAt = transport.now();
    expect(ok).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(295);
    await sleep(30);
    const frames = binary();
    expect(frames).toHaveLength(15);
    for (const f of frames) expect(f.binary.length).toBe(640);
    const got = Buffer.concat(frames.map((f) => f.binary));
    expect(got.subarray(0, pcm.length * 2)).toEqual(le(pcm));
    expect(got.subarray(pcm.length * 2).every((b) => b === 0)).toBe(true);
    // Paced, not bursted: about 20 ms apart, and never faster than real time overall (a loaded machine may
    // stall a frame, so single gaps are not bounded).
    const gaps = frames.slice(1).map((f, i) => f.at - frames[i]!.at);
    gaps.sort((a, b) => a - b);
    expect(gaps[Math.floor(gaps.length / 2)]).toBeGreaterThan(12);
    expect(gaps[Math.floor(gaps.length / 2)]).toBeLessThan(28);
    expect(frames[14]!.at - frames[0]!.at).toBeGreaterThanOrEqual(220);
    // onPlayed: each frame once, at least 20 ms after the one before.
    expect(played).toHaveLength(15);
    for (let i = 1; i < played.length; i++) expect(played[i]!.timestampMs - played[i - 1]!.timestampMs).toBeGreaterThanOrEqual(19.99);
    // The mark resolves once the last frame has had its 20 ms, and goes out after it.
    expect(resolvedAt).toBeGreaterThanOrEqual(played[14]!.timestampMs + 19);
    expect(json()).toEqual([{ type: 'mark', name: 'sentence-1' }]);
    expect('json' in received[received.length - 1]!).toBe(true);
  });

  it('notify() sends each live message as a JSON text message, each valid against its schema; none after close', async () => {
    const { transport, json, clientClosed } = await connect();
    const messages: LiveMessage[] = [
      { type: 'agent.state', state: 'listening' },
      { type: 'caller.interim', text: 'when does' },
      { type: 'caller.final', text: 'When does the clinic open?', start_ms: 60, end_ms: 1400 },
      { type: 'agent.state', state: 'thinking' },
      { type: 'agent.sentence', text: 'We open at nine.' },
      { type: 'turn.latency', endpointing: 501, stt_final: 250, retrieval: 3.2, llm_ttft: 120.5, tts_ttfb: 200, voice_to_voice: 701 },
    ];
    for (const m of messages) transport.notify(m);
    await vi.waitFor(() => expect(json()).toHaveLength(messages.length));
    expect(json()).toEqual(messages);
    for (const m of json()) expect(liveMessageSchemas[m.type as LiveMessageType].parse(m)).toEqual(m);
    await transport.close('done');
    transport.notify({ type: 'agent.state', state: 'speaking' });
    await clientClosed;
    expect(json().map((m) => m.type)).toEqual([...messages.map((m) => m.type), 'end']);
  });

  it('clear() drops the queued audio, tells the browser and fails the pending mark', async () => {
    const { transport, binary, json, received } = await connect();
    let played = 0;
    transport.onPlayed(() => played++);
    transport.send({ pcm: ramp(16000), sampleRate: 16000, timestampMs: 0 });
    const mark = transport.mark('long');
    await sleep(100);
    transport.clear();
    expect(await mark).toBe(false);
    const playedAtClear = played;
    await sleep(100);
    expect(played).toBe(playedAtClear);
    expect(playedAtClear).toBeGreaterThanOrEqual(1);
    expect(playedAtClear).toBeLessThanOrEqual(7);
    // Nothing after the clear message: the browser got exactly the frames played before it.
    expect(json()).toEqual([{ type: 'clear' }]);
    expect('json' in received[received.length - 1]!).toBe(true);
    expect(binary()).toHaveLength(playedAtClear);
  });

  it('ends audio() and fires onHangup when the browser sends end', async () => {
    const { transport, client, frames, audioDone } = await connect();
    let hangups = 0;
    transport.onHangup(() => hangups++);
    client.send(le(ramp(400)), { binary: true }); // one frame and 80 samples
    client.send(JSON.stringify({ type: 'end' }));
    await audioDone;
    expect(hangups).toBe(1);
    // The last partial frame is padded, not lost.
    expect(frames).toHaveLength(2);
    expect(Array.from(frames[1]!.pcm.subarray(0, 80))).toEqual(Array.from(ramp(400).subarray(320)));
    client.close();
    await sleep(30);
    expect(hangups).toBe(1);
  });

  it('fires onHangup when the socket drops', async () => {
    const { transport, client, audioDone } = await connect();
    let hangups = 0;
    transport.onHangup(() => hangups++);
    client.terminate();
    await audioDone;
    expect(hangups).toBe(1);
    expect(await transport.mark('late')).toBe(false);
  });

  it('close(reason) sends end with the reason and closes with 1000', async () => {
    const { transport, json, clientClosed, audioDone } = await connect();
    let hangups = 0;
    transport.onHangup(() => hangups++);
    await transport.close('agent ended the call');
    expect(await clientClosed).toBe(1000);
    await audioDone;
    expect(json()).toEqual([{ type: 'end', reason: 'agent ended the call' }]);
    expect(hangups).toBe(0);
  });
});

describe('BrowserTransport: what the browser sends while its call is set up', () => {
  /** A server that holds the socket's messages (as the call's token is checked) and makes the transport on `ready()`. */
  async function slowSetup() {
    let now = 1000;
    const clock = () => now;
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const held = new Promise<{ socket: WebSocket; early: ReturnType<typeof holdEarlyMessages> }>((r) =>
      wss.once('connection', (socket) => r({ socket, early: holdEarlyMessages(socket, clock) })),
    );
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/browser`);
    const control: Record<string, unknown>[] = [];
    client.on('message', (data, isBinary) => !isBinary && control.push(JSON.parse(String(data)) as Record<string, unknown>));
    const clientClosed = new Promise<number>((r) => client.once('close', (code) => r(code)));
    await new Promise((r) => client.once('open', r));
    const { socket, early } = await held;
    cleanups.push(async () => {
      client.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    });
    /** The setup took `ms`: the transport is made with what was held. */
    const ready = (ms: number) => {
      now += ms;
      const transport = new BrowserTransport(socket, { clock, early: early.take() });
      cleanups.unshift(() => transport.close('test over'));
      return transport;
    };
    return { client, control, clientClosed, ready };
  }

  it('replays audio sent before the transport existed, in order, on the clock that started when the socket opened', async () => {
    const { client, ready } = await slowSetup();
    const pcm = ramp(16000); // 1 s, sent at once as a browser flushing its buffer
    client.send(le(pcm.subarray(0, 8000)));
    client.send(le(pcm.subarray(8000)));
    await sleep(200); // both delivered to the server's socket, nobody listening but the hold
    // The setup took 1 s: 1 s of audio is within the lead, none of it is dropped.
    const transport = ready(1000);
    const frames: AudioFrame[] = [];
    const done = (async () => {
      for await (const f of transport.audio()) frames.push(f);
    })();
    client.send(JSON.stringify({ type: 'end' }));
    await done;
    expect(frames).toHaveLength(50);
    expect(frames[0]!.timestampMs).toBe(0);
    expect(Int16Array.from(frames.flatMap((f) => [...f.pcm]))).toEqual(pcm);
    expect(transport.admission.violation).toBeUndefined();
  });

  it('past 1 MiB held, the caller is refused with 1008 as a flood, after the transport is made', async () => {
    const { client, control, clientClosed, ready } = await slowSetup();
    for (let i = 0; i < 40; i++) client.send(Buffer.alloc(32000, 0x11));
    await sleep(300);
    const transport = ready(100);
    let violation: string | undefined;
    transport.onHangup((v) => (violation = v));
    expect(await clientClosed).toBe(1008);
    expect(violation).toBe('audio sent faster than real time');
    expect(control).toContainEqual({ type: 'error', error: { code: 'media_policy', message: 'audio sent faster than real time' } });
  });
});
