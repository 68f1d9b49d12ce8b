// CallLog: where one call's transcript, events and end are written, bound to its tenant and call. The session
// only knows this port: production writes through CallService (callLogFor), tests keep it in memory (MemoryCallLog).
import type { CallEventData, CallEventType } from '../lib/call-events.js';
import type { CallService, CallStatus, NewTurn } from '../services/calls.js';

export interface CallLog {
  readonly callId: string;
  addTurn(turn: NewTurn): Promise<unknown>;
  /** One of the catalog's events with its data (`lib/call-events.ts`): tsc refuses an unknown type or payload. */
  event<T extends CallEventType>(type: T, data: CallEventData<T>): Promise<void>;
  /** Ends the call record once (a second end keeps the first). */
  end(status: CallStatus, reason: string): Promise<unknown>;
}

/** The call's log in the database. Methods are looked up at each write, so a wrapped CallService is honoured. */
export function callLogFor(calls: Pick<CallService, 'addTurn' | 'event' | 'end'>, tenantId: string, callId: string): CallLog {
  return {
    callId,
    addTurn: (turn) => calls.addTurn(tenantId, callId, turn),
    event: (type, data) => calls.event(tenantId, callId, type, data),
    end: (status, reason) => calls.end(tenantId, callId, status, reason),
  };
}

/** A call's log kept in memory, for tests: what the session wrote, in order. */
export class MemoryCallLog implements CallLog {
  readonly turns: NewTurn[] = [];
  readonly events: { type: CallEventType; data: Record<string, unknown> }[] = [];
  ended: { status: CallStatus; reason: string } | undefined;

  constructor(readonly callId = '00000000-0000-4000-8000-0000000000ca') {}

  async addTurn(turn: NewTurn): Promise<void> {
    this.turns.push(turn);
  }

  async event<T extends CallEventType>(type: T, data: CallEventData<T>): Promise<void> {
    this.events.push({ type, data: data as Record<string, unknown> });
  }

  async end(status: CallStatus, reason: string): Promise<void> {
    this.ended ??= { status, reason };
  }
}
