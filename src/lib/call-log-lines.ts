// One info line when a call starts and one when it ends (tenant, call id, channel, duration, ended reason): what an
// operator follows in the terminal. A CallObserver beside the operator metrics, told by CallService.
import type { CallObserver, ObservedCall } from './operator-metrics.js';

/** The channel a call came through, from its direction (a LiveKit SIP call is inbound: a phone). */
const CHANNEL: Record<string, string> = { inbound: 'phone', outbound: 'phone', web: 'web', chat: 'chat' };

export class CallLogLines implements CallObserver {
  constructor(private readonly log: { info(obj: object, msg: string): void }) {}

  callEvent(tenantId: string, type: string, data: unknown, call?: ObservedCall): void {
    if (!call) return;
    const channel = CHANNEL[call.direction] ?? call.direction;
    const fields = { tenantId, callId: call.id, channel, direction: call.direction };
    if (type === 'call.started') this.log.info(fields, `call started (${channel}, ${call.direction})`);
    else if (type === 'call.ended') {
      const { status, reason } = data as { status: string; reason: string };
      const seconds = call.durationMs === null ? '?' : (call.durationMs / 1000).toFixed(1);
      this.log.info(
        { ...fields, status, reason, durationMs: call.durationMs },
        `call ended (${channel}): ${status}, ${reason}, ${seconds} s`,
      );
    }
  }

  turn(): void {}
}

/** Several observers as one: each is told everything, in order. */
export function allObservers(...observers: CallObserver[]): CallObserver {
  return {
    callEvent: (tenantId, type, data, call) => observers.forEach((o) => o.callEvent(tenantId, type, data, call)),
    turn: (metrics) => observers.forEach((o) => o.turn(metrics)),
  };
}
