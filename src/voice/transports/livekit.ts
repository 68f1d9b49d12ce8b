// LiveKitTransport: a call's audio through a LiveKit room, on @livekit/rtc-node. The agent joins with its token and
// publishes one microphone track (an AudioSource fed in real time by a Playout, so marks and barge-in work as on
// every transport); the caller's microphone arrives through an AudioStream that LiveKit already resamples to our
// rate. DTMF comes from the caller's SIP DTMF packets; the caller leaving, or the room going away, is a hangup.
// waitForCaller tells the agent when to start talking: a browser once it is in the room, a phone once answered.
import {
  AudioSource,
  AudioStream,
  LocalAudioTrack,
  ParticipantKind,
  AudioFrame as RtcAudioFrame,
  Room,
  RoomEvent,
  TrackKind,
  TrackPublishOptions,
  TrackSource,
  type RemoteParticipant,
  type RemoteTrack,
} from '@livekit/rtc-node';
import { EventQueue } from '../../lib/event-queue.js';
import { type AudioFrame, durationMs, FRAME_MS, StreamResampler } from '../audio.js';
import { type AdmissionLimits, InboundAdmission } from './inbound-admission.js';
import { Playout } from './playout.js';
import type { Transport } from './transport.js';
import { Listeners, OnceEvent } from '../../lib/listeners.js';

/**
 * How waiting for the caller ended: the caller is there and can hear the agent; left before that (a phone that
 * stopped ringing); the room went away (deleted, or the agent's connection lost); or the wait was abandoned.
 */
export type CallerWait = 'ready' | 'left' | 'room_closed' | 'abandoned';

/** 16 kHz suits the speech models; 48 kHz is WebRTC's own rate (no resampling inside LiveKit). */
export type LiveKitSampleRate = 16000 | 48000;

export interface LiveKitTransportOptions {
  /** ws(s):// address of the LiveKit server. */
  url: string;
  /** The agent's join token for the call's room (LiveKitService.agentToken). */
  token: string;
  sampleRate?: LiveKitSampleRate;
  /** Who the caller is; without it, the first browser or phone participant in the room. */
  callerIdentity?: string;
  /** Called when agent audio could not be handed to LiveKit (the call goes on). */
  onError?: (err: unknown) => void;
  /** Giving up on joining (a timeout, shutdown): the room is left and connect() rejects with the reason. */
  signal?: AbortSignal;
  /** The wall clock, ms (performance.now by default); tests drive it by hand. */
  clock?: () => number;
  limits?: AdmissionLimits;
}

/** The parts of an rtc-node audio frame we read (interleaved PCM). */
export type RtcFrameLike = Pick<RtcAudioFrame, 'data' | 'sampleRate' | 'channels' | 'samplesPerChannel'>;

/** Our mono frame as an rtc-node frame for AudioSource.captureFrame. */
export function toRtcFrame(frame: AudioFrame): RtcAudioFrame {
  return new RtcAudioFrame(frame.pcm, frame.sampleRate, 1, frame.pcm.length);
}

/** Interleaved PCM of any channel count, mixed down to mono (the speech stages take one channel). */
export function monoPcm(frame: RtcFrameLike): Int16Array {
  if (frame.channels <= 1) return frame.data.subarray(0, frame.samplesPerChannel);
  const out = new Int16Array(frame.samplesPerChannel);
  for (let i = 0; i < out.length; i++) {
    let sum = 0;
    for (let c = 0; c < frame.channels; c++) sum += frame.data[i * frame.channels + c]!;
    out[i] = Math.round(sum / frame.channels);
  }
  return out;
}

/** Browser and phone participants can be the caller; agents, egress recorders and ingress never are. */
const CALLER_KINDS = new Set<ParticipantKind>([ParticipantKind.STANDARD, ParticipantKind.SIP]);

/** Caller frames waiting for the session (10 s of 20 ms frames); past it the newest are dropped. */
const MAX_QUEUED_FRAMES = 500;

/** The participant attributes waitForCaller reads. */
type ParticipantLike = Pick<RemoteParticipant, 'identity' | 'kind' | 'attributes'>;

/**
 * Whether the participant can hear us. A phone joins the room while it is still ringing (outbound calls) and LiveKit
 * sets `sip.callStatus` to `active` once it is answered; without the attribute (older servers) it counts as answered.
 */
const answered = (p: ParticipantLike) => p.kind !== ParticipantKind.SIP || (p.attributes['sip.callStatus'] ?? 'active') === 'active';

export class LiveKitTransport implements Transport {
  readonly kind = 'livekit';
  private readonly clock: () => number;
  private readonly started: number;
  /** LiveKit paces WebRTC audio itself; this holds whatever reaches us to real time all the same. */
  readonly admission: InboundAdmission;
  private readonly playout: Playout;
  private readonly incoming = new EventQueue<AudioFrame>(MAX_QUEUED_FRAMES);
  private callerIdentity: string | undefined;
  private reading = false;
  /** Where the caller's audio stands on the transport clock: anchored at its first frame, then by samples. */
  private callerClockMs: number | undefined;
  private capturing: Promise<void> = Promise.resolve();
  private ended = false;
  /** Why audio stopped: close()'s reason, or what ended the call from LiveKit's side. */
  closedReason: string | undefined;
  private readonly hangupListeners = new OnceEvent<[violation?: string]>();
  /** Told once when audio ends, however it ends (waitForCaller gives up then). */
  private endListeners: (() => void)[] = [];
  /** Whether audio ended because the caller left, rather than the room closing or close(). */
  private callerLeft = false;
  private readonly dtmfListeners = new Listeners<[digit: string]>();
  private readonly playedListeners = new Listeners<[frame: AudioFrame]>();

  /** Joins the room and publishes the agent's track; resolves once audio can flow both ways. */
  static async connect(opts: LiveKitTransportOptions): Promise<LiveKitTransport> {
    opts.signal?.throwIfAborted();
    const sampleRate = opts.sampleRate ?? 16000;
    const room = new Room();
    const source = new AudioSource(sampleRate, 1);
    // Listening before connecting: the caller may already be in the room, and its track arrives right after.
    const transport = new LiveKitTransport(room, source, sampleRate, opts);
    // Leaving the room at once: whatever rtc-node still does for this connection, the agent is not in the call.
    const abandon = () => void transport.close('joining the LiveKit room was abandoned').catch(() => undefined);
    opts.signal?.addEventListener('abort', abandon, { once: true });
    try {
      await room.connect(opts.url, opts.token, { autoSubscribe: true, dynacast: false });
      opts.signal?.throwIfAborted();
      const track = LocalAudioTrack.createAudioTrack('agent-voice', source);
      await room.localParticipant!.publishTrack(track, new TrackPublishOptions({ source: TrackSource.SOURCE_MICROPHONE }));
      opts.signal?.throwIfAborted();
    } catch (err) {
      await transport.close('could not join the LiveKit room').catch(() => undefined);
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', abandon);
    }
    return transport;
  }

  /** Use connect(); the room and source are injected here so the event handling can be tested without a server. */
  constructor(
    private readonly room: Room,
    private readonly source: Pick<AudioSource, 'captureFrame' | 'clearQueue' | 'close'>,
    readonly sampleRate: LiveKitSampleRate,
    private readonly opts: Pick<LiveKitTransportOptions, 'callerIdentity' | 'onError' | 'clock' | 'limits'> = {},
  ) {
    this.clock = opts.clock ?? (() => performance.now());
    this.started = this.clock();
    this.admission = new InboundAdmission(sampleRate, this.clock, opts.limits);
    this.callerIdentity = opts.callerIdentity;
    this.playout = new Playout(sampleRate, (frame, playedAt) => {
      // Handed to LiveKit in order; its own buffer holds about one frame because the Playout paces in real time.
      this.capturing = this.capturing
        .then(() => this.source.captureFrame(toRtcFrame(frame)))
        .catch((err: unknown) => this.opts.onError?.(err));
      const timestampMs = playedAt - this.started;
      this.playedListeners.emit({ pcm: frame.pcm, sampleRate, timestampMs });
    });
    // Handlers outlive close() (the room is dropped after disconnecting), so each checks `ended` itself.
    room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack, _publication, participant: RemoteParticipant) => {
      if (this.ended || this.reading || track.kind !== TrackKind.KIND_AUDIO || !this.isCaller(participant)) return;
      void this.readCallerAudio(new AudioStream(track, { sampleRate, numChannels: 1, frameSizeMs: FRAME_MS }));
    });
    room.on(RoomEvent.DtmfReceived, (_code: number, digit: string, participant: RemoteParticipant) => {
      if (!this.ended && this.isCaller(participant)) this.dtmfListeners.emit(digit);
    });
    room.on(RoomEvent.ParticipantDisconnected, (participant: RemoteParticipant) => {
      if (this.callerIdentity === undefined || participant.identity !== this.callerIdentity || this.ended) return;
      this.callerLeft = true;
      this.hangup('caller left the room');
    });
    room.on(RoomEvent.Disconnected, () => this.hangup('the room was closed'));
  }

  /**
   * Caller audio as our frames: mono, at the transport rate (resampled here only if LiveKit did not), stamped on
   * the transport clock. A stream ends when the caller unpublishes; a track published again is read again.
   */
  async readCallerAudio(frames: AsyncIterable<RtcFrameLike>): Promise<void> {
    this.reading = true;
    let resampler: StreamResampler | undefined;
    try {
      for await (const f of frames) {
        if (this.ended) break;
        let pcm = monoPcm(f);
        if (f.sampleRate !== this.sampleRate) {
          if (resampler?.from !== f.sampleRate) resampler = new StreamResampler(f.sampleRate, this.sampleRate);
          pcm = resampler.push(pcm);
        }
        if (!pcm.length) continue;
        const taken = this.admission.audio(pcm.length);
        if (this.admission.violation) {
          this.hangup(`caller refused: ${this.admission.violation}`, this.admission.violation);
          break;
        }
        if (taken < pcm.length) pcm = pcm.subarray(0, taken);
        if (!pcm.length) continue;
        this.callerClockMs ??= this.clock() - this.started;
        this.incoming.push({ pcm, sampleRate: this.sampleRate, timestampMs: this.callerClockMs });
        this.callerClockMs += durationMs(pcm.length, this.sampleRate);
      }
    } catch (err) {
      this.opts.onError?.(err);
    } finally {
      this.reading = false;
    }
  }

  /** ms since the transport started: the clock of every frame timestamp. */
  now(): number {
    return this.clock() - this.started;
  }

  /**
   * Resolves `ready` once the caller is in the room and can hear the agent (a phone: once answered), so the
   * greeting is not spoken to an empty room or a ringing phone; otherwise says why the wait ended.
   */
  waitForCaller(signal: AbortSignal): Promise<CallerWait> {
    return new Promise((resolve) => {
      let settled = false;
      const endedHow = (): CallerWait => (this.callerLeft ? 'left' : 'room_closed');
      const check = () => {
        if (this.ended) return settle(endedHow());
        for (const p of this.room.remoteParticipants.values()) if (this.isCaller(p) && answered(p)) return settle('ready');
      };
      const giveUp = () => settle('abandoned');
      const onEnd = () => settle(endedHow());
      const settle = (outcome: CallerWait) => {
        if (settled) return;
        settled = true;
        this.room.off(RoomEvent.ParticipantConnected, check);
        this.room.off(RoomEvent.ParticipantAttributesChanged, check);
        signal.removeEventListener('abort', giveUp);
        this.endListeners = this.endListeners.filter((l) => l !== onEnd);
        resolve(outcome);
      };
      if (signal.aborted) return settle('abandoned');
      this.room.on(RoomEvent.ParticipantConnected, check);
      this.room.on(RoomEvent.ParticipantAttributesChanged, check);
      signal.addEventListener('abort', giveUp, { once: true });
      this.endListeners.push(onEnd);
      // The caller may have been in the room before the agent joined.
      check();
    });
  }

  // ---- Transport ----

  audio(): AsyncIterable<AudioFrame> {
    return this.incoming;
  }

  send(frame: AudioFrame): void {
    this.playout.enqueue(frame);
  }

  mark(name: string): Promise<boolean> {
    return this.playout.mark(name);
  }

  clear(): void {
    this.playout.clear();
    // Also what LiveKit has buffered: the caller must stop hearing the agent at once.
    this.source.clearQueue();
  }

  onDtmf(listener: (digit: string) => void): void {
    this.dtmfListeners.add(listener);
  }

  onHangup(listener: (violation?: string) => void): void {
    this.hangupListeners.add(listener);
  }

  onPlayed(listener: (frame: AudioFrame) => void): void {
    this.playedListeners.add(listener);
  }

  async close(reason: string): Promise<void> {
    if (this.finish(reason)) await this.room.disconnect();
  }

  // ---- internals ----

  /** The caller, deciding on the first browser or phone participant when no identity was given. */
  private isCaller(p: Pick<RemoteParticipant, 'identity' | 'kind'>): boolean {
    if (this.callerIdentity === undefined && CALLER_KINDS.has(p.kind)) this.callerIdentity = p.identity;
    return p.identity === this.callerIdentity;
  }

  private hangup(reason: string, violation?: string): void {
    if (this.ended) return;
    this.hangupListeners.emit(violation);
    if (this.finish(reason)) void this.room.disconnect().catch(() => undefined);
  }

  /** Ends audio both ways once; true the first time. */
  private finish(reason: string): boolean {
    if (this.ended) return false;
    this.ended = true;
    this.closedReason = reason;
    this.playout.close();
    this.incoming.end();
    void this.capturing.then(() => this.source.close()).catch(() => undefined);
    for (const l of this.endListeners.splice(0)) l();
    return true;
  }
}
