// Tests for the media process: Twilio media websockets handed over at the upgrade to a real child process, and each
// stream back as a RemoteTransport, driven by a hand-written "Twilio" on a raw websocket. The transport's own rules
// (admission, pacing, marks in virtual time) are twilio-media-stream.test.ts's; here, that they cross the process
// boundary intact: authorization here, audio both ways, marks, clear, dtmf, hang-up, close, and a process that dies.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AddressInfo, Socket } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { type AudioFrame, muLawBase64, muLawDecode, muLawEncode } from '../voice/audio.js';
import type { TwilioStart } from '../voice/transports/twilio-media-stream.js';
import { MediaProcess, type RemoteTransport } from './media-process.js';

const STREAM_SID = 'MZ0123456789abcdef0123456789abcdef';
const tone = (ms: number, hz = 440) =>
  Int16Array.from({ length: (8000 * ms) / 1000 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 8000)));
const roundTrip = (pcm: Int16Array) => muLawDecode(muLawEncode(pcm));

let media: MediaProcess;
let url: string;
const gaps: number[] = [];
const authorized: TwilioStart[] = [];
/** What each upgrade's hand-over resolved to, in order. */
const accepted: Promise<RemoteTransport | null>[] = [];
const server = createServer();

beforeAll(async () => {
  media = new MediaProcess({ log: pino({ level: 'silent' }), onFrameGap: (ms) => gaps.push(ms) });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    accepted.push(
      media.accept(req, socket, head, async (start) => {
        authorized.push(start);
        return start.customParameters.token === 'good';
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/voice/twilio/stream`;
});
afterAll(async () => {
  await media.stop();
  await new Promise((r) => server.close(r));
});

/** A hand-driven Twilio: connected and start sent; what the service sends is collected. */
async function twilio(token = 'good') {
  const ws = new WebSocket(url);
  const received: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => {
    received.push(JSON.parse(String(data)) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise((r) => ws.once('open', r));
  const send = (msg: unknown) => ws.send(JSON.stringify(msg));
  send({ event: 'connected', protocol: 'Call', version: '1.0.0' });
  send({
    event: 'start',
    sequenceNumber: '1',
    streamSid: STREAM_SID,
    start: {
      streamSid: STREAM_SID,
      accountSid: 'AC1',
      callSid: 'CA1',
      tracks: ['inbound'],
      customParameters: { token },
      mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
    },
  });
  /** Resolves once `ok` holds for what was received. */
  const until = async (ok: (msgs: Record<string, unknown>[]) => boolean) => {
    while (!ok(received)) await new Promise<void>((r) => waiters.push(r));
  };
  return { ws, send, received, until, closed };
}

const events = (msgs: Record<string, unknown>[], event: string) => msgs.filter((m) => m.event === event);

describe('MediaProcess', () => {
  it('carries a stream: its start is authorized here, caller audio comes in, agent audio goes out with its mark, and a hang-up ends it', async () => {
    const tw = await twilio();
    const transport = (await accepted.at(-1))!;
    expect(transport).not.toBeNull();
    expect(authorized.at(-1)).toMatchObject({ streamSid: STREAM_SID, callSid: 'CA1', customParameters: { token: 'good' } });
    expect(transport.kind).toBe('twilio');

    // Caller audio: three frames, decoded and timestamped as Twilio numbered them.
    const callerPcm = tone(60);
    const frames: AudioFrame[] = [];
    const reading = (async () => {
      for await (const f of transport.audio()) frames.push(f);
    })();
    for (let i = 0; i < 3; i++) {
      tw.send({
        event: 'media',
        streamSid: STREAM_SID,
        media: {
          track: 'inbound',
          chunk: String(i + 1),
          timestamp: String(i * 20),
          payload: muLawBase64(callerPcm.subarray(i * 160, (i + 1) * 160)),
        },
      });
    }
    tw.send({ event: 'dtmf', streamSid: STREAM_SID, dtmf: { track: 'inbound_track', digit: '7' } });
    const digits: string[] = [];
    transport.onDtmf((d) => digits.push(d));
    await expect.poll(() => frames.length).toBe(3);
    expect(frames.map((f) => f.timestampMs)).toEqual([0, 20, 40]);
    expect(Array.from(frames.flatMap((f) => Array.from(f.pcm)))).toEqual(Array.from(roundTrip(callerPcm)));
    await expect.poll(() => digits).toEqual(['7']);

    // Agent audio: 60 ms goes out as three media messages, then the mark; Twilio's echo resolves it, and what was
    // heard comes back for the recording.
    const played: AudioFrame[] = [];
    transport.onPlayed((f) => played.push(f));
    const agentPcm = tone(60, 880);
    transport.send({ pcm: agentPcm, sampleRate: 8000, timestampMs: 0 });
    const marked = transport.mark('sentence-1');
    await tw.until((m) => events(m, 'mark').length === 1);
    const media = events(tw.received, 'media');
    expect(media).toHaveLength(3);
    expect(media[0]).toMatchObject({ streamSid: STREAM_SID });
    const sent = Buffer.concat(media.map((m) => Buffer.from((m.media as { payload: string }).payload, 'base64')));
    expect(Array.from(muLawDecode(sent))).toEqual(Array.from(roundTrip(agentPcm)));
    expect(events(tw.received, 'mark')[0]).toMatchObject({ mark: { name: 'sentence-1' } });
    tw.send({ event: 'mark', streamSid: STREAM_SID, mark: { name: 'sentence-1' } });
    expect(await marked).toBe(true);
    // Played audio is reported as its play time passes, which caller frames tell the transport (Twilio sends one every
    // 20 ms for the whole call).
    const heard = () => played.reduce((n, f) => n + f.pcm.length, 0);
    for (let i = 3; heard() < 480 && i < 100; i++) {
      tw.send({
        event: 'media',
        streamSid: STREAM_SID,
        media: { track: 'inbound', timestamp: String(i * 20), payload: muLawBase64(tone(20)) },
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(heard()).toBe(480);
    expect(Array.from(played.flatMap((f) => Array.from(f.pcm)))).toEqual(Array.from(agentPcm));
    // The gaps between the three media messages were timed there and reported here.
    await expect.poll(() => gaps.length).toBeGreaterThanOrEqual(2);
    expect(transport.now()).toBeGreaterThan(0);

    // The caller hangs up: the transport says so, and its audio ends.
    const hungUp = new Promise<string | undefined>((r) => transport.onHangup((v) => r(v)));
    tw.send({ event: 'stop', streamSid: STREAM_SID, stop: { accountSid: 'AC1', callSid: 'CA1' } });
    expect(await hungUp).toBeUndefined();
    await reading;
    await transport.close('call over');
  });

  it('refuses a stream whose start is not authorized: closed with 1008, and no transport', async () => {
    const tw = await twilio('forged');
    expect(await accepted.at(-1)).toBeNull();
    expect(await tw.closed).toBe(1008);
  });

  it('clear() answers pending marks false at once and sends Twilio a clear; close() closes the socket normally', async () => {
    const tw = await twilio();
    const transport = (await accepted.at(-1))!;
    transport.send({ pcm: tone(2000), sampleRate: 8000, timestampMs: 0 });
    const marked = transport.mark('long');
    await tw.until((m) => events(m, 'media').length > 0);
    transport.clear();
    expect(await marked).toBe(false);
    await tw.until((m) => events(m, 'clear').length === 1);
    expect(events(tw.received, 'clear')[0]).toEqual({ event: 'clear', streamSid: STREAM_SID });
    // Two seconds were queued; the clear stopped them well short of that.
    const sentBefore = events(tw.received, 'media').length;
    expect(sentBefore).toBeLessThan(100);
    await transport.close('done');
    expect(await tw.closed).toBe(1000);
  });

  it('records a stream where it is: the caller left, the agent as heard right, and the agent audio never comes back', async () => {
    const tw = await twilio();
    const transport = (await accepted.at(-1))!;
    const dir = mkdtempSync(path.join(tmpdir(), 'media-recording-'));
    const received = vi.spyOn(transport, 'receive');
    const reading = (async () => {
      for await (const f of transport.audio()) void f;
    })();
    // 100 ms of the caller (sent before the recording was asked for: kept for it), then 60 ms of the agent, heard as
    // the caller's frames keep coming (one each 20 ms).
    const callerPcm = tone(100);
    const agentPcm = tone(60, 880);
    const say = (i: number, pcm: Int16Array) =>
      tw.send({ event: 'media', streamSid: STREAM_SID, media: { track: 'inbound', timestamp: String(i * 20), payload: muLawBase64(pcm) } });
    for (let i = 0; i < 5; i++) say(i, callerPcm.subarray(i * 160, (i + 1) * 160));
    await expect.poll(() => received.mock.calls.filter(([item]) => item.k === 'audio').length).toBe(5);
    const recording = transport.recordAudio({ file: path.join(dir, 'call.wav'), offsetMs: 0 });
    transport.send({ pcm: agentPcm, sampleRate: 8000, timestampMs: 0 });
    const marked = transport.mark('s0');
    await tw.until((m) => events(m, 'mark').length === 1);
    tw.send({ event: 'mark', streamSid: STREAM_SID, mark: { name: 's0' } });
    expect(await marked).toBe(true);
    // Its play time passes (the transport reports audio as heard when caller frames arrive).
    for (let i = 5; i < 15; i++) {
      say(i, new Int16Array(160));
      await new Promise((r) => setTimeout(r, 20));
    }
    await expect.poll(() => received.mock.calls.filter(([item]) => item.k === 'audio').length).toBe(15);
    await transport.close('done');
    await reading;
    const { file, bytes } = await recording.finish();
    const wav = readFileSync(file);
    expect(wav.length).toBe(bytes);
    const pcm = new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + wav.length));
    const left = pcm.filter((_, i) => i % 2 === 0);
    const right = pcm.filter((_, i) => i % 2 === 1);
    // The caller's 100 ms from time 0, as decoded from Twilio's mu-law; the agent's 60 ms whole, from when it was heard.
    expect(Array.from(left.subarray(0, 800))).toEqual(Array.from(roundTrip(callerPcm)));
    const from = right.findIndex((x) => x !== 0) - agentPcm.findIndex((x) => x !== 0);
    expect(from).toBeGreaterThan(0);
    expect(Array.from(right.subarray(from, from + 480))).toEqual(Array.from(agentPcm));
    // The caller's audio came here for the session; the agent's was not sent back for the recording.
    expect(received.mock.calls.filter(([item]) => item.k === 'played')).toEqual([]);
    // Asked again, the same answer.
    expect((await recording.finish()).file).toBe(file);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a recording whose media process died before writing any of it fails with why, a new media process running or not', async () => {
    const tw = await twilio();
    const transport = (await accepted.at(-1))!;
    const dir = mkdtempSync(path.join(tmpdir(), 'media-recording-'));
    const recording = transport.recordAudio({ file: path.join(dir, 'call.wav'), offsetMs: 0 });
    const hungUp = new Promise((r) => transport.onHangup(() => r(undefined)));
    process.kill(media.pid!, 'SIGKILL');
    await hungUp;
    await tw.closed;
    // A new media process (for the next call) does not know the stream: the answer is still what the old one wrote.
    const next = await twilio();
    expect(await accepted.at(-1)).not.toBeNull();
    await expect(recording.finish()).rejects.toThrow('the media process stopped before it had written any of the recording');
    await transport.close('gone');
    await (await accepted.at(-1))!.close('done');
    await next.closed;
    rmSync(dir, { recursive: true, force: true });
  });

  it('a media process that cannot start: the stream gets no transport, and streams stay in the service for a while', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'media-entry-'));
    const entry = path.join(dir, 'broken.mjs');
    // An entry that exits before it says it is ready, as a broken install would.
    writeFileSync(entry, 'process.exit(3);\n');
    const broken = new MediaProcess({ log: pino({ level: 'silent' }), entry: pathToFileURL(entry) });
    expect(broken.available).toBe(true);
    const other = createServer();
    const handedOver = new Promise<RemoteTransport | null>((resolve) =>
      other.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
        resolve(broken.accept(req, socket, head, async () => true)),
      ),
    );
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    const ws = new WebSocket(`ws://127.0.0.1:${(other.address() as AddressInfo).port}/`);
    ws.on('error', () => {});
    const closed = new Promise((r) => ws.once('close', r));
    expect(await handedOver).toBeNull();
    await closed;
    expect(broken.available).toBe(false);
    await broken.stop();
    await new Promise((r) => other.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a media process that dies hangs up its calls, and the next stream starts a new one', async () => {
    const tw = await twilio();
    const transport = (await accepted.at(-1))!;
    const hungUp = new Promise<string | undefined>((r) => transport.onHangup((v) => r(v)));
    const pid = media.pid!;
    process.kill(pid, 'SIGKILL');
    expect(await hungUp).toBeUndefined();
    await tw.closed;
    await transport.close('gone');

    const again = await twilio();
    const next = (await accepted.at(-1))!;
    expect(next).not.toBeNull();
    expect(media.pid).not.toBe(pid);
    // It had started before it died: streams still go to it.
    expect(media.available).toBe(true);
    await next.close('done');
    expect(await again.closed).toBe(1000);
  });
});
