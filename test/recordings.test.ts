// Call recordings end to end: short voice calls through VoiceCalls on the local engines (espeak-ng greets, the caller
// speaks) produce a stereo WAV, caller left and agent right, downloadable through a signed URL from the local store or
// a presigned one from a bucket (the strict fake S3); switched off in the settings there is none; another tenant gets
// 404; a tampered or expired link 403; a storage failure leaves the call completed with a `recording.failed` event.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRecordingStore } from '../src/storage/local-store.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { FakeS3 } from './fakes/s3.js';
import { speech as speakAs } from './fixtures/speech.js';
import { buildTestApp, call, type Session, signup, type TestApp, twoTenants } from './helpers.js';

const RATE = 16000;
const speech = (text: string) => speakAs(text, RATE, 170);

function readStereoWav(wav: Buffer) {
  expect(wav.toString('latin1', 0, 4)).toBe('RIFF');
  expect(wav.toString('latin1', 8, 16)).toBe('WAVEfmt ');
  expect({ format: wav.readUInt16LE(20), channels: wav.readUInt16LE(22), rate: wav.readUInt32LE(24), bits: wav.readUInt16LE(34) }).toEqual({
    format: 1,
    channels: 2,
    rate: RATE,
    bits: 16,
  });
  expect(wav.toString('latin1', 36, 40)).toBe('data');
  const frames = wav.readUInt32LE(40) / 4;
  expect(44 + frames * 4).toBe(wav.length);
  const left = new Int16Array(frames);
  const right = new Int16Array(frames);
  for (let i = 0; i < frames; i++) {
    left[i] = wav.readInt16LE(44 + i * 4);
    right[i] = wav.readInt16LE(46 + i * 4);
  }
  return { left, right };
}
const matchesAt = (channel: Int16Array, pcm: Int16Array, at: number) =>
  at >= 0 && at + pcm.length <= channel.length && pcm.every((x, i) => channel[at + i] === x);

/**
 * A short call: the agent's greeting is heard, then the caller says one sentence and hangs up. The line carries
 * digital silence (no noise), so every non-zero sample in the recording is one side's speech.
 */
async function shortCall(t: TestApp, s: Session) {
  const wallStart = performance.now();
  const row = await t.deps.calls.start(s.tenant.id, { direction: 'web' });
  // Connected just before run(), as a media socket is: the recording takes run()'s start as the transport's time 0,
  // and a transport made before the call's row would be off by that insert (long on a busy machine).
  const transport = new MemoryTransport(RATE, 0);
  // The end of the last caller frame the call has read (and recorded): the caller hangs up once the call has caught
  // up with the line, since frames still queued at a hang-up are not recorded and a busy machine reads them late.
  let readToMs = 0;
  const audio = transport.audio.bind(transport);
  transport.audio = () => ({
    [Symbol.asyncIterator]: () => {
      const frames = audio()[Symbol.asyncIterator]();
      return {
        next: async () => {
          const next = await frames.next();
          if (!next.done) readToMs = next.value.timestampMs + 20;
          return next;
        },
      };
    },
  });
  const outcome = t.deps.voice.run(s.tenant.id, row.id, transport);
  const deadline = Date.now() + 20_000;
  while ((await t.deps.calls.transcript(s.tenant.id, row.id)).length < 1) {
    if (Date.now() > deadline) throw new Error('no greeting');
    await sleep(50);
  }
  const words = await speech('Hello there.');
  const saidAtMs = transport.now();
  await transport.say(words);
  while (readToMs < transport.now() - 40) await sleep(5);
  const hungUpAtMs = transport.now();
  transport.hangup();
  expect(await outcome).toMatchObject({ status: 'completed', reason: 'caller hung up' });
  const endedAtMs = transport.now();
  /** Wall time the whole call took, setup included: a bound on anything measured within it, however busy the machine. */
  const wallMs = performance.now() - wallStart;
  const events = (await t.deps.calls.events(s.tenant.id, row.id)).map((e) => ({ type: e.type, data: e.extraData }));
  // Where the transport's time 0 is in the recording (on the call's clock: the call started before its audio did).
  const offsetMs = (events.find((e) => e.type === 'recording.saved')?.data as { offset_ms?: number } | undefined)?.offset_ms ?? 0;
  return { callId: row.id, transport, words, saidAtMs, hungUpAtMs, endedAtMs, wallMs, events, offsetMs };
}

async function tenant(t: TestApp, settings: object = {}): Promise<Session> {
  const s = await signup(t.app);
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { greeting: 'Hello, Sunrise clinic.', ...settings });
  expect(put.statusCode, put.body).toBe(200);
  return s;
}

/** The caller's words are in the left channel, bit for bit, in the frame slot they were sent in; the agent's in the right. */
function expectChannels(wav: Buffer, c: Awaited<ReturnType<typeof shortCall>>) {
  const { left, right } = readStereoWav(wav);
  const frame = RATE / 50;
  const shift = (c.offsetMs * RATE) / 1000;
  const slots = [];
  // The words go out from the transport's next frame slot; when the event loop ran late (a busy machine) the line
  // is catching up, so that slot may be some way before the moment say() was called (seconds, when the machine is
  // loaded: the window only has to hold the right slot, the match itself is bit-exact).
  for (
    let at = Math.max(0, Math.floor(((c.saidAtMs - 5000) * RATE) / 1000 / frame) * frame);
    at <= ((c.saidAtMs + 200) * RATE) / 1000;
    at += frame
  )
    slots.push(shift + at);
  const callerAt = slots.find((at) => matchesAt(left, c.words, at));
  expect(callerAt, 'caller speech in the left channel where it was said').toBeDefined();
  // Nothing else in the left channel: the agent's voice did not leak into the caller's side.
  const leftOutside = left.filter((x, i) => x !== 0 && (i < callerAt! || i >= callerAt! + c.words.length));
  expect(leftOutside.length).toBe(0);

  // The right channel is what the caller heard, frame by frame, at the time it was heard.
  const heard = c.transport.heard;
  expect(heard.length).toBeGreaterThan(10);
  for (const f of heard) {
    const at = shift + Math.round((f.atMs * RATE) / 1000);
    const found = [0, -1, 1, -2, 2].map((d) => at + d * 16).some((p) => matchesAt(right, f.pcm, p));
    expect(found, `agent frame heard at ${f.atMs.toFixed(1)} ms`).toBe(true);
  }
  const heardSamples = heard.reduce((n, f) => n + f.pcm.length, 0);
  expect(right.filter((x) => x !== 0).length).toBeLessThanOrEqual(heardSamples);
  expect(right.filter((x) => x !== 0).length).toBeGreaterThan(heardSamples / 2);
  // The greeting was over before the caller spoke.
  expect(right.subarray(callerAt!, callerAt! + c.words.length).every((x) => x === 0)).toBe(true);
  return { left, right };
}

describe('recordings in the local store', () => {
  let t: TestApp;
  let a: Session;
  let b: Session;
  let recorded: Awaited<ReturnType<typeof shortCall>>;
  beforeAll(async () => {
    t = await buildTestApp();
    ({ a, b } = await twoTenants(t.app));
    await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, { greeting: 'Hello, Sunrise clinic.' });
    recorded = await shortCall(t, a);
  }, 60_000);
  afterAll(() => t?.close());

  it('stores a stereo WAV, caller left and agent right, and serves it through a signed URL', async () => {
    const types = recorded.events.map((e) => e.type);
    // Stored while the call ended: the recording event comes before the call's end.
    expect(types.at(-1)).toBe('call.ended');
    const saved = recorded.events.find((e) => e.type === 'recording.saved')!;
    expect(saved).toBeDefined();
    expect(types).not.toContain('recording.failed');

    const askedAt = Date.now();
    const res = await call(t.app, 'GET', `/api/v1/calls/${recorded.callId}/recording`, a.access_token);
    const answeredAt = Date.now();
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { url: string; expires_at: string; duration_ms: number };
    expect(body.url).toMatch(
      new RegExp(`^/api/v1/recordings/${a.tenant.id}/${recorded.callId}\\.wav\\?expires=\\d+&signature=[0-9a-f]{64}$`),
    );
    // The link lives urlTtlMs from when it was signed (expires_at in whole seconds), however long the request took.
    const ttlMs = t.deps.config.recordings.urlTtlMs;
    expect(Date.parse(body.expires_at)).toBeGreaterThan(askedAt + ttlMs - 1000);
    expect(Date.parse(body.expires_at)).toBeLessThanOrEqual(answeredAt + ttlMs);
    // On the call's clock, like the transcript: from the call's start, which came before its audio (by the time
    // it took to set the call up, within the call's wall time whatever the load).
    expect(recorded.offsetMs).toBeGreaterThanOrEqual(0);
    expect(recorded.offsetMs).toBeLessThan(recorded.wallMs);
    // The recording runs until the call ended: from the hang-up to the end of run() (which a busy machine stretches).
    expect(body.duration_ms).toBeGreaterThanOrEqual(recorded.offsetMs + Math.floor(recorded.hungUpAtMs) - 60);
    expect(body.duration_ms).toBeLessThanOrEqual(recorded.offsetMs + Math.ceil(recorded.endedAtMs));
    expect(saved.data).toMatchObject({ duration_ms: body.duration_ms });

    // Public: the signed URL is the credential (no Authorization header).
    const download = await t.app.inject({ method: 'GET', url: body.url });
    expect(download.statusCode, download.body).toBe(200);
    expect(download.headers['content-type']).toBe('audio/wav');
    expect(saved.data).toMatchObject({ bytes: download.rawPayload.length });
    const { left, right } = expectChannels(download.rawPayload, recorded);
    // A turn's start_ms and end_ms are on the recording's clock: the greeting is heard within its turn, which starts
    // before the TTS is asked and ends once its last frame has played. The TTS's latency, which load stretches, only
    // moves the first audio later inside it; a transcript early against the recording by more than a few ms ends
    // before the audio does, one late by more than the greeting's length starts after it.
    const [greeting] = (await call(t.app, 'GET', `/api/v1/calls/${recorded.callId}/transcript`, a.access_token)).json().items as {
      start_ms: number;
      end_ms: number;
    }[];
    const firstHeardMs = (right.findIndex((x) => x !== 0) * 1000) / RATE;
    expect(firstHeardMs).toBeGreaterThanOrEqual(greeting!.start_ms);
    expect(firstHeardMs).toBeLessThan(greeting!.end_ms);
    // The greeting's frames (silent ones too) on the recording's clock: expectChannels found each one there.
    const greetingFrames = recorded.transport.heard.filter((f) => f.atMs < recorded.saidAtMs);
    expect(recorded.offsetMs + greetingFrames[0]!.atMs).toBeGreaterThanOrEqual(greeting!.start_ms);
    // The playout reaches the last mark up to 1 ms before that frame ends; the call's origin (a database time) and
    // end_ms are whole ms.
    expect(recorded.offsetMs + greetingFrames.at(-1)!.atMs + 20).toBeLessThanOrEqual(greeting!.end_ms + 5);
    expect(Math.round((left.length * 1000) / RATE)).toBe(body.duration_ms);
    const row = await t.deps.calls.get(a.tenant.id, recorded.callId);
    expect([row.recordingKey, row.recordingMs]).toEqual([`${a.tenant.id}/${recorded.callId}.wav`, body.duration_ms]);
  });

  it('answers 404 to another tenant, and for a call without a recording', async () => {
    const cross = await call(t.app, 'GET', `/api/v1/calls/${recorded.callId}/recording`, b.access_token);
    expect([cross.statusCode, cross.json().error.code]).toEqual([404, 'not_found']);
    const chat = await call(t.app, 'POST', '/api/v1/chat', b.access_token, { message: 'Hello' });
    const none = await call(t.app, 'GET', `/api/v1/calls/${chat.json().session_id}/recording`, b.access_token);
    expect([none.statusCode, none.json().error.code]).toEqual([404, 'not_found']);
    const anonymous = await t.app.inject({ method: 'GET', url: `/api/v1/calls/${recorded.callId}/recording` });
    expect(anonymous.statusCode).toBe(401);
  });

  it('refuses a tampered, re-targeted, unsigned or expired download link with 403', async () => {
    const { url } = (await call(t.app, 'GET', `/api/v1/calls/${recorded.callId}/recording`, a.access_token)).json() as { url: string };
    const u = new URL(url, 'http://x');
    const signature = u.searchParams.get('signature')!;
    const expires = u.searchParams.get('expires')!;
    const key = `${a.tenant.id}/${recorded.callId}.wav`;
    const flipped = `${signature.slice(0, -1)}${signature.endsWith('0') ? '1' : '0'}`;
    const links = [
      `/api/v1/recordings/${key}?expires=${expires}&signature=${flipped}`,
      `/api/v1/recordings/${key}?expires=${Number(expires) + 86_400}&signature=${signature}`,
      `/api/v1/recordings/${b.tenant.id}/${recorded.callId}.wav?expires=${expires}&signature=${signature}`,
      `/api/v1/recordings/${key}?expires=${expires}`,
      `/api/v1/recordings/${key}`,
      `/api/v1/recordings/..%2F${key}?expires=${expires}&signature=${signature}`,
    ];
    for (const link of links) {
      const res = await t.app.inject({ method: 'GET', url: link });
      expect([res.statusCode, res.json().error.code], link).toEqual([403, 'forbidden']);
    }
    // A link genuinely signed with this deployment's key, but whose time is up.
    const past = new LocalRecordingStore({ dir: 'memory://', secretKey: t.deps.config.secretKey, now: () => Date.now() - 120_000 });
    const expired = await t.app.inject({ method: 'GET', url: await past.signedUrl(key, 60_000) });
    expect([expired.statusCode, expired.json().error.code]).toEqual([403, 'forbidden']);
    expect(expired.json().error.message).toMatch(/expired/);
    // The same store signing now: accepted, so the refusal above was the expiry alone.
    const fresh = new LocalRecordingStore({ dir: 'memory://', secretKey: t.deps.config.secretKey });
    expect((await t.app.inject({ method: 'GET', url: await fresh.signedUrl(key, 60_000) })).statusCode).toBe(200);
  });

  it('records nothing when the tenant switched recording off', async () => {
    const s = await tenant(t, { call: { recording: false } });
    const c = await shortCall(t, s);
    expect(c.events.map((e) => e.type)).not.toContain('recording.saved');
    const res = await call(t.app, 'GET', `/api/v1/calls/${c.callId}/recording`, s.access_token);
    expect([res.statusCode, res.json().error.code]).toEqual([404, 'not_found']);
    expect(await t.deps.recordings.get(`${s.tenant.id}/${c.callId}.wav`)).toBeNull();
  }, 60_000);
});

describe('recordings in an S3 bucket (the fake S3, through the AWS SDK)', () => {
  let t: TestApp;
  let s3: FakeS3;
  beforeAll(async () => {
    s3 = await new FakeS3({ region: 'eu-central-1', buckets: ['call-recordings'] }).start();
    t = await buildTestApp(s3.recordingsEnv('call-recordings'));
  });
  afterAll(async () => {
    await t?.close();
    await s3?.stop();
  });

  it('uploads the recording and hands out a presigned URL that downloads it from the bucket', async () => {
    const s = await tenant(t);
    const c = await shortCall(t, s);
    expect(c.events.map((e) => e.type)).toContain('recording.saved');
    const key = `${s.tenant.id}/${c.callId}.wav`;
    expect(s3.object('call-recordings', key)?.contentType).toBe('audio/wav');

    const { url } = (await call(t.app, 'GET', `/api/v1/calls/${c.callId}/recording`, s.access_token)).json() as { url: string };
    expect(url.startsWith(`${s3.baseUrl}/call-recordings/${key}?`)).toBe(true);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expectChannels(Buffer.from(await res.arrayBuffer()), c);
    // The bucket route is the download path: ours serves nothing.
    const local = await t.app.inject({ method: 'GET', url: `/api/v1/recordings/${key}?expires=9999999999&signature=${'0'.repeat(64)}` });
    expect(local.statusCode).toBe(404);
  }, 60_000);

  it('a recording the bucket refuses does not fail the call: recording.failed, and no recording', async () => {
    const s = await tenant(t);
    s3.buckets.delete('call-recordings');
    try {
      const c = await shortCall(t, s);
      const failed = c.events.find((e) => e.type === 'recording.failed');
      expect(failed?.data).toMatchObject({ error: expect.stringMatching(/bucket does not exist/) });
      expect(c.events.at(-1)!.type).toBe('call.ended');
      const record = (await call(t.app, 'GET', `/api/v1/calls/${c.callId}`, s.access_token)).json();
      expect(record.status).toBe('completed');
      const res = await call(t.app, 'GET', `/api/v1/calls/${c.callId}/recording`, s.access_token);
      expect(res.statusCode).toBe(404);
    } finally {
      s3.buckets.set('call-recordings', new Map());
    }
  }, 60_000);
});
