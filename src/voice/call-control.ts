// Control of live calls (hang up, transfer) from any instance of the service: the instance holding a call's media
// runs the command; the others pass it on through the cache's pub/sub (Redis when REDIS_URL is set). A command can
// also reach every live call of a tenant, or of one user of it (a suspension, a deactivation), wherever they are.
import type { FastifyBaseLogger } from 'fastify';
import type { Cache } from '../cache/cache.js';

export type CallCommand = { type: 'hangup'; reason: string } | { type: 'transfer'; to: string; reason: string };

/** Whose calls: a tenant's, or with userId only those its user started (web calls). */
export interface CallScope {
  tenantId: string;
  userId?: string;
}

const CHANNEL = 'call-control';

type Message = { callId: string; command: CallCommand } | { scope: CallScope; command: CallCommand };

interface LiveCall {
  handler: (command: CallCommand) => void;
  scope: CallScope | undefined;
}

export class CallControl {
  private readonly live = new Map<string, LiveCall>();

  constructor(
    private readonly cache: Cache,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Starts hearing commands meant for calls held here. */
  async start(): Promise<void> {
    await this.cache.subscribe(CHANNEL, (message) => {
      try {
        const msg = JSON.parse(message) as Message;
        if ('callId' in msg) this.live.get(msg.callId)?.handler(msg.command);
        else for (const call of this.inScope(msg.scope)) call.handler(msg.command);
      } catch (err) {
        this.log.warn({ err }, 'unreadable call-control message');
      }
    });
  }

  /** Registers the handler of a call whose media this instance holds (and whose it is); returns its removal. */
  attach(callId: string, handler: (command: CallCommand) => void, scope?: CallScope): () => void {
    const call = { handler, scope };
    this.live.set(callId, call);
    return () => {
      if (this.live.get(callId) === call) this.live.delete(callId);
    };
  }

  /** Runs the command here when the call is held here, otherwise passes it to whichever instance holds it. */
  async send(callId: string, command: CallCommand): Promise<void> {
    const local = this.live.get(callId);
    if (local) local.handler(command);
    else await this.cache.publish(CHANNEL, JSON.stringify({ callId, command } satisfies Message));
  }

  /** Runs the command on every live call in scope, on every instance (this one hears its own message too). */
  async sendAll(scope: CallScope, command: CallCommand): Promise<void> {
    await this.cache.publish(CHANNEL, JSON.stringify({ scope, command } satisfies Message));
  }

  private inScope(scope: CallScope): LiveCall[] {
    return [...this.live.values()].filter(
      (c) => c.scope?.tenantId === scope.tenantId && (scope.userId === undefined || c.scope.userId === scope.userId),
    );
  }
}
