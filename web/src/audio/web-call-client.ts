// The browser side of a web call, without React (the embeddable widget reuses it): the microphone (echo
// cancellation on) through an AudioWorklet to 16 kHz PCM16 over the call's websocket, and the agent's audio through
// a jitter buffer that `clear` empties at once, so a barge-in silences the agent immediately. Protocol: binary
// messages both ways; text messages are JSON: `mark`, `clear`, `end`, `error` today, and whatever else the server
// sends (live transcript, agent state, latencies) goes to `onMessage`.
import workletUrl from './worklets.js?url';

export type CallState = 'idle' | 'connecting' | 'live' | 'ended';

export interface ServerMessage {
  type: string;
  [key: string]: unknown;
}

export interface WebCallOptions {
  /** The websocket URL (POST /api/v1/calls/web's stream_url, see sameOriginStreamUrl). */
  url: string;
  onState?: (state: CallState, reason?: string) => void;
  /** Every JSON message from the server (after `clear` and `end` have been acted on). */
  onMessage?: (msg: ServerMessage) => void;
  /**
   * The agent's audio started (true) or stopped (false) coming out of the speaker. A start comes with its time on
   * the page's clock (performance.now()), and is also a User Timing mark named PLAYING_MARK.
   */
  onPlaying?: (playing: boolean, atMs?: number) => void;
  onError?: (message: string) => void;
}

/**
 * The stream URL on this page's origin: the service names its own address (PUBLIC_BASE_URL, or where it listens),
 * which behind a dev server or proxy is not the one the page came from.
 */
export function sameOriginStreamUrl(streamUrl: string, location: { protocol: string; host: string } = window.location): string {
  const u = new URL(streamUrl);
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${u.pathname}${u.search}`;
}

/**
 * The performance mark made each time the agent's audio starts playing (a reply's first audio, or again after the
 * jitter buffer ran dry): with the caller's end of speech, the voice-to-voice latency as the caller hears it.
 */
export const PLAYING_MARK = 'web-call:agent-audio-playing';

export class WebCallClient {
  private state: CallState = 'idle';
  private socket: WebSocket | null = null;
  private context: AudioContext | null = null;
  private media: MediaStream | null = null;
  private capture: AudioWorkletNode | null = null;
  private player: AudioWorkletNode | null = null;

  constructor(private readonly options: WebCallOptions) {}

  get currentState(): CallState {
    return this.state;
  }

  /** Asks for the microphone, opens the socket and starts both directions. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error('a call client starts once');
    this.setState('connecting');
    try {
      this.media = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
      const context = new AudioContext({ latencyHint: 'interactive' });
      this.context = context;
      await context.audioWorklet.addModule(workletUrl);
      this.player = new AudioWorkletNode(context, 'player', { numberOfInputs: 0, outputChannelCount: [1] });
      this.player.port.onmessage = (e: MessageEvent<{ type: string; at?: number }>) => {
        if (e.data.type !== 'playing') return this.options.onPlaying?.(false);
        const atMs = this.pageTime(e.data.at);
        performance.mark(PLAYING_MARK, { startTime: atMs });
        this.options.onPlaying?.(true, atMs);
      };
      this.player.connect(context.destination);
      this.capture = new AudioWorkletNode(context, 'capture', { numberOfOutputs: 0 });
      context.createMediaStreamSource(this.media).connect(this.capture);
      await context.resume();
      await this.open();
      // Microphone frames flow only once the socket is open: nothing is queued, so the call stays real time.
      this.capture.port.onmessage = (e: MessageEvent<ArrayBuffer>) => {
        if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(e.data);
      };
      this.setState('live');
    } catch (err) {
      this.fail(err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  private open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.options.url);
      socket.binaryType = 'arraybuffer';
      this.socket = socket;
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error('The call’s audio connection failed'));
      socket.onclose = (e) => this.finish(e.reason || 'disconnected');
      socket.onmessage = (e: MessageEvent<ArrayBuffer | string>) => this.receive(e.data);
    });
  }

  private receive(data: ArrayBuffer | string): void {
    if (typeof data !== 'string') {
      this.player?.port.postMessage({ type: 'audio', pcm: data }, [data]);
      return;
    }
    let msg: ServerMessage;
    try {
      msg = JSON.parse(data) as ServerMessage;
    } catch {
      return;
    }
    if (msg.type === 'clear') this.player?.port.postMessage({ type: 'clear' });
    if (msg.type === 'error') {
      const e = msg.error as { message?: string } | undefined;
      this.options.onError?.(e?.message ?? 'The call reported an error');
    }
    this.options.onMessage?.(msg);
    if (msg.type === 'end') this.finish(typeof msg.reason === 'string' ? msg.reason : 'ended');
  }

  /**
   * A time on the audio clock (seconds) on the page's clock (ms), through the context's own pairing of the two
   * (getOutputTimestamp: which sample the speaker plays, and when), so the output latency is included: a sample
   * rendered now is heard a little later. Now, when there is no believable pairing (no output device).
   */
  private pageTime(audioSeconds: number | undefined): number {
    const now = performance.now();
    const ts = this.context?.getOutputTimestamp?.();
    if (audioSeconds === undefined || !ts?.performanceTime || ts.contextTime === undefined) return now;
    const at = ts.performanceTime + (audioSeconds - ts.contextTime) * 1000;
    return Math.abs(at - now) < 1000 ? at : now;
  }

  /** Sends silence instead of the microphone (the call keeps its timing). */
  mute(muted: boolean): void {
    this.capture?.port.postMessage({ type: 'mute', muted });
  }

  /** A keypad digit (0-9, * or #). */
  dtmf(digit: string): void {
    this.sendJson({ type: 'dtmf', digit });
  }

  /** Ends the call from this side. */
  hangup(): void {
    this.sendJson({ type: 'end' });
    this.finish('hung up');
  }

  private sendJson(msg: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(msg));
  }

  private fail(message: string): void {
    this.options.onError?.(message);
    this.finish(message);
  }

  private finish(reason: string): void {
    if (this.state === 'ended') return;
    this.setState('ended', reason);
    this.capture?.port.close();
    this.media?.getTracks().forEach((t) => t.stop());
    // Let a last "end" leave before closing.
    const socket = this.socket;
    if (socket && socket.readyState === WebSocket.OPEN) setTimeout(() => socket.close(1000), 200);
    void this.context?.close().catch(() => undefined);
  }

  private setState(state: CallState, reason?: string): void {
    this.state = state;
    this.options.onState?.(state, reason);
  }
}
