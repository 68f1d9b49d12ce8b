// The media process (started by media-process.ts): the Twilio media websockets of the service's calls, handed over
// at the upgrade. Here each one is a TwilioMediaStreamTransport, as it would be in the service: the handshake, the
// peer's admission rules, caller audio decoded, agent audio paced out. The service keeps the call itself (the token
// check, the session, STT, the agent); the two talk in batches (media-link.ts). Why a process: the
// pacing then runs on an event loop and a heap of its own, which keep time on a core the service saturates
// (README, capacity). A stream's recording is written here too when the service asks (`record`): both channels are
// here, so neither comes back to the service for it (the agent's audio would cross the IPC twice).
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer } from 'ws';
import type { AudioFrame } from '../voice/audio.js';
import { CallRecorder } from '../voice/recording.js';
import { TwilioMediaStreamTransport } from '../voice/transports/twilio-media-stream.js';
import { type Batch, Batcher, type FromMedia, type ToMedia, type Upgrade } from './media-link.js';

/** The IPC channel to the service (the process object in the child; a stand-in in tests). */
export interface MediaChannel {
  send(message: unknown): unknown;
  on(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
}

/** Twilio's messages are small (a media message carrying a whole second of audio is under 11 KB). */
const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * Caller frames kept from a stream's start until the service asks for its recording (it decides once it has read
 * the tenant's settings, while Twilio's audio already flows): the recording then starts with them, as the service's
 * own recorder, reading its queue from the start, did. Kept only this long: a call not recorded is not asked about.
 */
const EARLY_FRAMES = 250;

/** Streams waiting for the service's answer to their start, and streams running. */
interface Stream {
  authorize?: (ok: boolean, error?: boolean) => void;
  transport?: TwilioMediaStreamTransport;
  recorder?: CallRecorder;
  /** The caller's first frames (EARLY_FRAMES), until the recording starts; undefined once past. */
  early?: AudioFrame[];
}

export function runMediaChild(channel: MediaChannel): void {
  const out = new Batcher<FromMedia>((batch) => channel.send(batch));
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const streams = new Map<number, Stream>();
  /** Recordings until the service asks for them (`record-end`), which may be after their stream closed. */
  const recorders = new Map<number, CallRecorder>();

  const accept = (up: Upgrade, socket: Socket) => {
    const { id } = up;
    // What handleUpgrade reads of the request: method, url and headers.
    const req = { method: up.method, url: up.url, headers: up.headers } as unknown as IncomingMessage;
    // A request ws refuses (not a websocket handshake) is answered 400 and its socket destroyed, with no callback.
    let upgraded = false;
    socket.once('close', () => upgraded || out.add({ k: 'gone', id }));
    wss.handleUpgrade(req, socket, Buffer.from(up.head), (ws) => {
      upgraded = true;
      const stream: Stream = {};
      streams.set(id, stream);
      void TwilioMediaStreamTransport.accept(ws, {
        onFrameGap: (ms) => out.add({ k: 'gap', ms }),
        authorize: (start) =>
          new Promise<boolean>((resolve, reject) => {
            stream.authorize = (ok, error) => (error ? reject(new Error('authorization failed')) : resolve(ok));
            out.add({ k: 'start', id, start });
          }),
      }).then((accepted) => {
        stream.authorize = undefined;
        if (!accepted) {
          streams.delete(id);
          out.add({ k: 'gone', id });
          return;
        }
        const transport = accepted.transport;
        stream.transport = transport;
        out.add({ k: 'accepted', id, startedAt: performance.timeOrigin + performance.now() - transport.now() });
        transport.onDtmf((digit) => out.add({ k: 'dtmf', id, digit }));
        transport.onHangup((violation) => out.add({ k: 'hangup', id, ...(violation !== undefined && { violation }) }));
        stream.early = [];
        void (async () => {
          for await (const frame of transport.audio()) {
            if (stream.recorder) stream.recorder.addCaller(frame);
            // Kept as they are: a frame's memory is never written again (PcmArena).
            else if (stream.early) {
              if (stream.early.length < EARLY_FRAMES) stream.early.push(frame);
              else stream.early = undefined;
            }
            out.audio({ k: 'audio', id, at: 0, n: 0, ts: frame.timestampMs }, frame.pcm);
          }
        })();
      });
    });
  };

  const endRecording = (id: number) => {
    const recorder = recorders.get(id);
    recorders.delete(id);
    if (!recorder) return out.add({ k: 'recorded', id, error: 'this stream is not recorded here' });
    recorder.finish().then(
      (recording) => out.add({ k: 'recorded', id, recording }),
      (err: unknown) => out.add({ k: 'recorded', id, error: err instanceof Error ? err.message : String(err) }),
    );
  };

  const apply = (item: ToMedia, pcm: Int16Array) => {
    if (item.k === 'record-end') return endRecording(item.id);
    const stream = streams.get(item.id);
    if (!stream) return;
    if (item.k === 'auth') return stream.authorize?.(item.ok, item.error);
    const transport = stream.transport;
    if (!transport) return;
    switch (item.k) {
      case 'send':
        return transport.send({ pcm: pcm.subarray(item.at, item.at + item.n), sampleRate: transport.sampleRate, timestampMs: item.ts });
      case 'mark': {
        const mark = item.mark;
        void transport.mark(item.name).then((played) => out.add({ k: 'mark', id: item.id, mark, played }));
        return;
      }
      case 'clear':
        return transport.clear();
      case 'played-on':
        return transport.onPlayed((frame) => out.audio({ k: 'played', id: item.id, at: 0, n: 0, ts: frame.timestampMs }, frame.pcm));
      case 'record': {
        // As recordTransport does in the service: the caller's frames as they come, the agent's as they are heard.
        const recorder = new CallRecorder(transport.sampleRate, item.file, item.offsetMs, () => transport.now());
        for (const frame of stream.early ?? []) recorder.addCaller(frame);
        stream.early = undefined;
        stream.recorder = recorder;
        recorders.set(item.id, recorder);
        transport.onPlayed((frame) => recorder.addAgent(frame));
        return;
      }
      case 'close':
        streams.delete(item.id);
        void transport.close(item.reason).finally(() => out.add({ k: 'closed', id: item.id }));
        return;
    }
  };

  channel.on('message', (message, handle) => {
    const m = message as Upgrade | Batch<ToMedia>;
    if ('k' in m) {
      if (m.k === 'upgrade' && handle) accept(m, handle as Socket);
      return;
    }
    for (const item of m.items) apply(item, m.pcm);
  });
}
