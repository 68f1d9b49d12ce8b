// Control of live calls (hang up, transfer) from any instance of the service: the instance holding a call's media
// runs the command; the others pass it on through the cache's pub/sub (Redis when REDIS_URL is set).
import type { FastifyBaseLogger } from 'fastify';
import type { Cache } from '../cache/cache.js';

export type CallCommand = { type: 'hangup'; reason: string } | { type: 'transfer'; to: string; reason: string };

const CHANNEL = 'call-control';

export class CallControl {
  private readonly live = new Map<string, (command: CallCommand) => void>();

  constructor(
    private readonly cache: Cache,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Starts hearing commands meant for calls held here. */
  async start(): Promise<void> {
    await this.cache.subscribe(CHANNEL, (message) => {
      try {
        const { callId, command } = JSON.parse(message) as { callId: string; command: CallCommand };
        this.live.get(callId)?.(command);
      } catch (err) {
        this.log.warn({ err }, 'unreadable call-control message');
      }
    });
  }

  /** Registers the handler of a call whose media this instance holds; returns its removal. */
  attach(callId: string, handler: (command: CallCommand) => void): () => void {
    this.live.set(callId, handler);
    return () => {
      if (this.live.get(callId) === handler) this.live.delete(callId);
    };
  }

  /** Runs the command here when the call is held here, otherwise passes it to whichever instance holds it. */
  async send(callId: string, command: CallCommand): Promise<void> {
    const local = this.live.get(callId);
    if (local) local(command);
    else await this.cache.publish(CHANNEL, JSON.stringify({ callId, command }));
  }
}
