// LiveKitTransport without a LiveKit server (none runs here): frame conversion, the caller's audio (mixed to mono,
// resampled, stamped on the transport clock), agent audio paced into the AudioSource with marks and clear(), DTMF
// from the caller only, and hangup when the caller leaves or the room closes. The room is a plain event emitter
// standing in for rtc-node's Room; connect() itself is not exercised.
import { EventEmitter } from 'node:events';
import { AudioFrame as RtcAudioFrame, ParticipantKind, type Room, RoomEvent } from '@livekit/rtc-node';
import { describe, expect, it } from 'vitest';
import type { AudioFrame } from '../audio.js';
import { LiveKitTransport, monoPcm, toRtcFrame } from './livekit.js';

class FakeRoom extends EventEmitter {
  disconnects = 0;
  async disconnect(): Promise<void> {
    this.disconnects++;
  }
}
class FakeSource {
  readonly captured: RtcAudioFrame[] = [];
  clears = 0;
  closed = false;
  async captureFrame(frame: RtcAudioFrame): Promise<void> {
    this.captured.push(frame);
  }
  clearQueue(): void {
    this.clears++;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const participant = (identity: string, kind: ParticipantKind) => ({ identity, kind });
function setup(callerIdentity?: string) {
  const room = new FakeRoom();
  const source = new FakeSource();
  const transport = new LiveKitTransport(room as unknown as Room, source, 16000, { callerIdentity });
  return { room, source, transport };
}
async function* frames(...list: RtcAudioFrame[]) {
  yield* list;
}
const tone = (samples: number, value: number) => new Int16Array(samples).fill(value);

describe('frame conversion', () => {
  it('hands our mono frames to rtc-node as they are and mixes interleaved channels down', () => {
    const pcm = Int16Array.from([1, -2, 3]);
    const rtc = toRtcFrame({ pcm, sampleRate: 16000, timestampMs: 0 });
    expect([rtc.sampleRate, rtc.channels, rtc.samplesPerChannel, [...rtc.data]]).toEqual([16000, 1, 3, [1, -2, 3]]);
    const stereo = new RtcAudioFrame(Int16Array.from([100, 300, -100, -300]), 48000, 2, 2);
    expect([...monoPcm(stereo)]).toEqual([200, -200]);
    expect([...monoPcm(new RtcAudioFrame(Int16Array.from([5, 6, 7]), 16000, 1, 2))]).toEqual([5, 6]);
  });
});

describe('LiveKitTransport', () => {
  it('delivers the caller’s audio mono at the transport rate with continuous timestamps', async () => {
    const { transport } = setup('caller');
    // 48 kHz stereo, as a track LiveKit did not resample would arrive: three 20 ms frames.
    const stereo = () => new RtcAudioFrame(tone(960 * 2, 1000), 48000, 2, 960);
    await transport.readCallerAudio(frames(stereo(), stereo(), stereo()));
    await transport.close('done');
    const got: AudioFrame[] = [];
    for await (const f of transport.audio()) got.push(f);
    const samples = got.reduce((n, f) => n + f.pcm.length, 0);
    expect(got.every((f) => f.sampleRate === 16000)).toBe(true);
    // 60 ms at 16 kHz, less the resampler's lag (it keeps the filter's half width until more audio comes).
    expect(samples).toBeGreaterThan(800);
    expect(samples).toBeLessThanOrEqual(960);
    for (let i = 1; i < got.length; i++)
      expect(got[i]!.timestampMs).toBeCloseTo(got[i - 1]!.timestampMs + (got[i - 1]!.pcm.length * 1000) / 16000, 6);
    // Steady level after the filter settles: the mix of two equal channels, not their sum.
    expect(Math.abs(got.at(-1)!.pcm.at(-100)! - 1000)).toBeLessThan(50);
  });

  it('plays agent audio into the source in real time, resolves marks, and clear() empties LiveKit’s buffer too', async () => {
    const { source, transport } = setup('caller');
    const played: AudioFrame[] = [];
    transport.onPlayed((f) => played.push(f));
    const t0 = performance.now();
    transport.send({ pcm: tone(1600, 500), sampleRate: 16000, timestampMs: 0 }); // 100 ms
    expect(await transport.mark('first')).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    await new Promise((r) => setTimeout(r, 5));
    expect(source.captured.map((f) => [f.sampleRate, f.channels, f.samplesPerChannel])).toEqual(Array(5).fill([16000, 1, 320]));
    expect(played).toHaveLength(5);
    expect(played[1]!.timestampMs - played[0]!.timestampMs).toBeCloseTo(20, 6);

    transport.send({ pcm: tone(16000, 500), sampleRate: 16000, timestampMs: 0 }); // 1 s
    const long = transport.mark('long');
    await new Promise((r) => setTimeout(r, 50));
    transport.clear();
    expect(await long).toBe(false);
    expect(source.clears).toBe(1);
    expect(source.captured.length).toBeLessThan(5 + 10);
    expect(() => transport.send({ pcm: tone(320, 1), sampleRate: 8000, timestampMs: 0 })).toThrow(/16000 Hz got 8000 Hz/);
    await transport.close('done');
    expect(source.closed).toBe(true);
  });

  it('takes DTMF from the caller only, the first browser or phone participant when no identity is given', () => {
    const { room, transport } = setup();
    const digits: string[] = [];
    transport.onDtmf((d) => digits.push(d));
    room.emit(RoomEvent.DtmfReceived, 1, '1', participant('agent-2', ParticipantKind.AGENT));
    room.emit(RoomEvent.DtmfReceived, 2, '2', participant('sip_+15551230000', ParticipantKind.SIP));
    room.emit(RoomEvent.DtmfReceived, 3, '3', participant('someone-else', ParticipantKind.STANDARD));
    room.emit(RoomEvent.DtmfReceived, 4, '#', participant('sip_+15551230000', ParticipantKind.SIP));
    expect(digits).toEqual(['2', '#']);
  });

  it('hangs up once when the caller leaves, not when someone else does', async () => {
    const { room, transport } = setup('caller');
    let hangups = 0;
    transport.onHangup(() => hangups++);
    const audio = transport.audio()[Symbol.asyncIterator]();
    const next = audio.next();
    room.emit(RoomEvent.ParticipantDisconnected, participant('observer', ParticipantKind.STANDARD));
    expect(hangups).toBe(0);
    room.emit(RoomEvent.ParticipantDisconnected, participant('caller', ParticipantKind.STANDARD));
    room.emit(RoomEvent.Disconnected, 0);
    expect(hangups).toBe(1);
    expect(await next).toEqual({ value: undefined, done: true });
    expect(transport.closedReason).toBe('caller left the room');
    expect(room.disconnects).toBe(1);
    expect(await transport.mark('after')).toBe(false);
  });

  it('hangs up when the room goes away, and a close() of its own is no hangup', async () => {
    const gone = setup('caller');
    let hangups = 0;
    gone.transport.onHangup(() => hangups++);
    gone.room.emit(RoomEvent.Disconnected, 0);
    expect([hangups, gone.transport.closedReason]).toEqual([1, 'the room was closed']);

    const closed = setup('caller');
    closed.transport.onHangup(() => hangups++);
    await closed.transport.close('agent ended the call');
    closed.room.emit(RoomEvent.Disconnected, 0);
    await closed.transport.close('again');
    expect(hangups).toBe(1);
    expect([closed.room.disconnects, closed.transport.closedReason]).toEqual([1, 'agent ended the call']);
  });

  it('holds the caller to real time too: audio past the lead is dropped, a flood hangs up with the violation', async () => {
    const room = new FakeRoom();
    const transport = new LiveKitTransport(room as unknown as Room, new FakeSource(), 16000, { callerIdentity: 'caller', clock: () => 0 });
    const violations: (string | undefined)[] = [];
    transport.onHangup((v) => violations.push(v));
    // 20 ms frames as fast as they come, the clock standing still: 10 s of them.
    async function* flood() {
      for (let i = 0; i < 500; i++) yield new RtcAudioFrame(tone(320, 100), 16000, 1, 320);
    }
    await transport.readCallerAudio(flood());
    const got: AudioFrame[] = [];
    for await (const f of transport.audio()) got.push(f);
    expect(got.reduce((n, f) => n + f.pcm.length, 0)).toBe(1.5 * 16000);
    expect(violations).toEqual(['audio sent faster than real time']);
    expect(transport.closedReason).toBe('caller refused: audio sent faster than real time');
    expect(room.disconnects).toBe(1);
  });
});
