// The media process (started by media-process.ts): the Twilio media websockets of the service's calls, handed over
// at the upgrade. Here each one is a TwilioMediaStreamTransport, as it would be in the service: the handshake, the
// peer's admission rules, caller audio decoded, agent audio paced out. The service keeps the call itself (the token
// check, the session, STT, the agent, the recording); the two talk in batches (media-link.ts). Why a process: the
// pacing then runs on an event loop and a heap of its own, which keep time on a core the service saturates
// (README, capacity).
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer } from 'ws';
import { TwilioMediaStreamTransport } from '../voice/transports/twilio-media-stream.js';
import { type Batch, Batcher, type FromMedia, type ToMedia, type Upgrade } from './media-link.js';

/** The IPC channel to the service (the process object in the child; a stand-in in tests). */
export interface MediaChannel {
  send(message: unknown): unknown;
  on(event: 'message', listener: (message: unknown, handle?: unknown) => void): unknown;
}

/** Twilio's messages are small (a media message carrying a whole second of audio is under 11 KB). */
const MAX_MESSAGE_BYTES = 64 * 1024;

/** Streams waiting for the service's answer to their start, and streams running. */
interface Stream {
  authorize?: (ok: boolean, error?: boolean) => void;
  transport?: TwilioMediaStreamTransport;
}

export function runMediaChild(channel: MediaChannel): void {
  const out = new Batcher<FromMedia>((batch) => channel.send(batch));
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const streams = new Map<number, Stream>();

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
        void (async () => {
          for await (const frame of transport.audio()) out.audio({ k: 'audio', id, at: 0, n: 0, ts: frame.timestampMs }, frame.pcm);
        })();
      });
    });
  };

  const apply = (item: ToMedia, pcm: Int16Array) => {
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
