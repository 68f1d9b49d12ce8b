// Calls and chat sessions as records: the call row (status, timing, metrics summary), its transcript turns
// (with citations and per-turn latencies) and its events (the audit trail). Everything is written as it
// happens, so a restart loses nothing already said and a conversation is rebuilt from here, never from memory.
// The webhook events a call causes (call.started/ended, transcript.turn, transfers, recording.ready) are written to
// the outbox here, in the same transaction as the change that causes them: both are stored or neither.
import { randomUUID } from 'node:crypto';
import { and, asc, count, desc, eq, gte, inArray, isNull, lt, or, type SQL, sql } from 'drizzle-orm';
import { type Db, fromRow, rowsOf } from '../db/client.js';
import { callEvents, calls, callTranscripts, documentChunks, documents, tenants, users, webhookEvents } from '../db/schema.js';
import type { CallEventData, CallEventType } from '../lib/call-events.js';
import { type Citation, citationOf } from '../lib/citation.js';
import { notFound } from '../lib/errors.js';
import type { WebhookEventData } from '../lib/webhook-events.js';
import { eventCtes, type Executor, publishEvent, WEBHOOK_CHANNEL } from './outbox.js';
import { callCost } from './usage.js';
import type { CallObserver, ObservedCall } from '../lib/operator-metrics.js';
import type { AgentOverrides } from './settings.js';
import type { CallMetadata, CallVariables } from '../lib/call-input.js';

export type Call = typeof calls.$inferSelect;
/** A transcript turn as read: its citations whole (older rows' bare chunk ids are resolved by `transcript`). */
export type Turn = Omit<typeof callTranscripts.$inferSelect, 'citations'> & { citations: Citation[] };
export type CallEvent = typeof callEvents.$inferSelect;
export type CallDirection = Call['direction'];

/** Twilio's call statuses, which our own channels reuse. */
export const CALL_STATUSES = ['queued', 'ringing', 'in_progress', 'completed', 'failed', 'busy', 'no_answer', 'canceled'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];
const TERMINAL_RANK = 3;
/** Progress order: a status never goes back to a lower rank, and an end is final. */
const STATUS_RANK: Record<CallStatus, number> = {
  queued: 0,
  ringing: 1,
  in_progress: 2,
  completed: 3,
  failed: 3,
  busy: 3,
  no_answer: 3,
  canceled: 3,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Why the sweeper ended a call (CallService.endStale). */
export type StaleReason = 'no_media' | 'instance_lost' | 'idle';
const STALE_DETAIL: Record<StaleReason, string> = {
  no_media: 'the call’s audio never connected',
  instance_lost: 'the instance carrying the call stopped',
  idle: 'the chat session was idle',
};

export interface NewTurn {
  speaker: Turn['speaker'];
  text: string;
  startMs?: number;
  endMs?: number;
  interrupted?: boolean;
  /** `text` ends with part of a sentence: what the caller heard of it before a barge-in. */
  truncated?: boolean;
  citations?: Citation[];
  metrics?: Record<string, number>;
}

export class CallService {
  constructor(
    private readonly db: Db,
    /** Told of every event and stored turn once written (the operator metrics). */
    private readonly observer?: CallObserver,
  ) {}

  async start(
    tenantId: string,
    input: {
      direction: CallDirection;
      fromNumber?: string;
      toNumber?: string;
      userId?: string;
      phoneNumberId?: string;
      providerCallSid?: string;
      overrides?: AgentOverrides;
      metadata?: CallMetadata;
      variables?: CallVariables;
    },
  ): Promise<Call> {
    const now = new Date();
    const { metadata, ...values } = input;
    const call = await this.create({
      tenantId,
      ...values,
      extraData: metadata ?? {},
      status: 'in_progress',
      startedAt: now,
      answeredAt: now,
    });
    return call!;
  }

  /**
   * A phone call known before anyone speaks: an outbound call being placed (status queued), or an inbound call
   * Twilio announced (in progress: our TwiML answers it). A webhook Twilio retries finds the row it made before.
   */
  async open(
    tenantId: string,
    input: {
      direction: 'inbound' | 'outbound';
      status: 'queued' | 'in_progress';
      fromNumber: string;
      toNumber: string;
      phoneNumberId?: string | null;
      providerCallSid?: string;
      overrides?: AgentOverrides;
      userId?: string;
      metadata?: CallMetadata;
      variables?: CallVariables;
    },
  ): Promise<Call> {
    const now = new Date();
    const answered = input.status === 'in_progress';
    const { metadata, ...values } = input;
    const call = await this.create(
      { tenantId, ...values, extraData: metadata ?? {}, startedAt: answered ? now : null, answeredAt: answered ? now : null },
      'providerCallSid',
    );
    return call ?? (await this.bySid(input.providerCallSid!))!;
  }

  /** The call Twilio knows by this SID, whichever tenant it belongs to (webhooks find their tenant through it). */
  async bySid(providerCallSid: string): Promise<Call | undefined> {
    const [row] = await this.db.select().from(calls).where(eq(calls.providerCallSid, providerCallSid));
    return row;
  }

  /** The phone call in a LiveKit room the SIP dispatch rule made (LiveKit names those rooms, not us). */
  async byRoom(tenantId: string, room: string): Promise<Call | undefined> {
    const [row] = await this.db
      .select()
      .from(calls)
      .where(and(eq(calls.tenantId, tenantId), eq(calls.livekitRoom, room)));
    return row;
  }

  /**
   * The phone call a caller brought into a LiveKit room of the SIP dispatch rule: the inbound call named by
   * `callId` (Twilio announced it, then handed it to LiveKit), if it is live and in no room yet; otherwise a new
   * inbound call. Undefined when the room has its call already: LiveKit delivers a webhook more than once, and
   * only one delivery may start the agent.
   */
  async openInRoom(
    tenantId: string,
    room: string,
    input: { callId?: string; fromNumber: string; toNumber: string; phoneNumberId?: string | null; overrides?: AgentOverrides },
  ): Promise<Call | undefined> {
    const { callId, ...values } = input;
    if (callId) {
      const [linked] = await this.db
        .update(calls)
        .set({ livekitRoom: room })
        .where(
          and(
            eq(calls.tenantId, tenantId),
            eq(calls.id, callId),
            eq(calls.direction, 'inbound'),
            isNull(calls.livekitRoom),
            isNull(calls.endedAt),
          ),
        )
        .returning();
      if (linked) return linked;
      if (await this.byRoom(tenantId, room)) return undefined;
    }
    const now = new Date();
    // The linked call above had its call.started when Twilio announced it: only a new record publishes one.
    return this.create(
      { tenantId, direction: 'inbound', status: 'in_progress', ...values, livekitRoom: room, startedAt: now, answeredAt: now },
      'livekitRoom',
    );
  }

  /**
   * A new call record with its `call.started` audit entry and webhook event, in one statement (one round trip where
   * a transaction took five, at every call's setup): both are made from the inserted row, so a record not made (the
   * `unique` column's value is taken: a webhook delivered twice) gets neither, and undefined is returned.
   */
  private async create(values: typeof calls.$inferInsert, unique?: 'providerCallSid' | 'livekitRoom'): Promise<Call | undefined> {
    // The id is ours rather than the database's, so the event's data is complete before the row exists.
    const row = { ...values, id: values.id ?? randomUUID() };
    const insert = this.db.insert(calls).values(row);
    const made = (unique ? insert.onConflictDoNothing({ target: calls[unique] }) : insert).returning();
    const started = { direction: row.direction };
    const { ctes } = eventCtes(
      row.tenantId,
      'call.started',
      {
        call_id: row.id,
        direction: row.direction,
        status: row.status ?? 'queued',
        from: row.fromNumber ?? null,
        to: row.toNumber ?? null,
        metadata: row.extraData ?? {},
      },
      { callId: row.id },
      { from: sql`c`, value: sql`'{}'::jsonb` },
    );
    const result = await this.db.execute(sql`
      with c as (${made.getSQL()}),
      a as (
        insert into ${callEvents} (tenant_id, call_id, type, extra_data)
        select tenant_id, id, 'call.started', ${JSON.stringify(started)}::jsonb from c returning 1),
      ${ctes}
      select c.*, (select pg_notify(${WEBHOOK_CHANNEL}, '')::text where exists (select 1 from d)) as notified from c`);
    const [raw] = rowsOf<Record<string, unknown>>(result);
    if (!raw) return undefined;
    const call = fromRow(calls, raw);
    this.observer?.callEvent(call.tenantId, 'call.started', started, call);
    return call;
  }

  async setProviderSid(tenantId: string, callId: string, providerCallSid: string): Promise<void> {
    await this.db
      .update(calls)
      .set({ providerCallSid })
      .where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId)));
  }

  /**
   * Applies a status the telephony provider reported. Statuses only move forward (queued, ringing, in progress,
   * then an end), so a callback that arrives late or twice changes nothing; an end is applied once, with the
   * provider's duration when it gives one. Returns whether anything changed.
   */
  async applyProviderStatus(
    tenantId: string,
    callId: string,
    status: CallStatus,
    info: { durationMs?: number; reason: string },
  ): Promise<boolean> {
    const rank = STATUS_RANK[status];
    const lower = CALL_STATUSES.filter((s) => STATUS_RANK[s] < rank);
    if (rank === TERMINAL_RANK) {
      const ended = await this.end(tenantId, callId, status, info.reason, info.durationMs);
      return ended !== undefined;
    }
    const [row] = await this.db
      .update(calls)
      .set({
        status,
        ...(status === 'in_progress' && {
          startedAt: sql`coalesce(${calls.startedAt}, now())`,
          answeredAt: sql`coalesce(${calls.answeredAt}, now())`,
        }),
      })
      .where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId), sql`${calls.endedAt} is null`, inArray(calls.status, lower)))
      .returning({ id: calls.id });
    return row !== undefined;
  }

  /**
   * Appends a turn with the next sequence number (turns of one call are written by one session, in order), with its
   * `transcript.turn` webhook event (one per stored turn). One statement: both are stored or neither, in one round
   * trip where a transaction took four (a call writes a turn every few seconds, on the connection its calls share).
   */
  async addTurn(tenantId: string, callId: string, turn: NewTurn): Promise<Turn> {
    const citations = turn.citations ?? [];
    const interrupted = turn.interrupted ?? false;
    const truncated = turn.truncated ?? false;
    const { ctes } = eventCtes(
      tenantId,
      'transcript.turn',
      {
        call_id: callId,
        // The number the database gives the row, merged in below.
        seq: 0,
        speaker: turn.speaker,
        text: turn.text,
        interrupted,
        truncated,
        start_ms: turn.startMs ?? null,
        end_ms: turn.endMs ?? null,
        // Published as chunk ids before citations were stored whole: kept so, with the whole form beside them.
        citations: citations.map((c) => c.chunk_id),
        citation_details: citations,
      },
      { callId },
      { from: sql`t`, value: sql`jsonb_build_object('seq', t.seq)` },
    );
    const result = await this.db.execute(sql`
      with t as (
        insert into ${callTranscripts} (tenant_id, call_id, seq, speaker, text, start_ms, end_ms, interrupted, truncated, citations, metrics)
        values (${tenantId}, ${callId}, (select coalesce(max(seq), 0) + 1 from ${callTranscripts} where call_id = ${callId}),
          ${turn.speaker}, ${turn.text}, ${turn.startMs ?? null}, ${turn.endMs ?? null}, ${interrupted}, ${truncated},
          ${JSON.stringify(citations)}::jsonb, ${JSON.stringify(turn.metrics ?? {})}::jsonb)
        returning *),
      ${ctes}
      select t.*, (select pg_notify(${WEBHOOK_CHANNEL}, '')::text where exists (select 1 from d)) as notified from t`);
    const [row] = rowsOf<Record<string, unknown>>(result);
    this.observer?.turn(turn.metrics);
    return { ...fromRow(callTranscripts, row!), citations };
  }

  /**
   * One entry of the call's audit trail: a type of the catalog (lib/call-events.ts) with its data. The types a
   * tenant's systems hear about (transfers, see webhookOf) are published in the same transaction.
   */
  async event<T extends CallEventType>(tenantId: string, callId: string, type: T, data: CallEventData<T>): Promise<void> {
    const publish = webhookOf(type, data);
    if (!publish) await this.insertEvent(this.db, tenantId, callId, type, data);
    else
      await this.db.transaction(async (tx) => {
        await this.insertEvent(tx, tenantId, callId, type, data);
        await publish(tx, tenantId, callId);
      });
  }

  /**
   * An entry of the audit trail written once for the call however often it comes: none is written when one of the
   * call's entries already holds `data[field]` (a provider's event id: LiveKit retries its webhooks, at times two at
   * once). Checked and written under a transaction lock on the call and id, so two deliveries on any instances write
   * one entry. True when this one wrote it.
   */
  async eventOnce<T extends CallEventType>(
    tenantId: string,
    callId: string,
    type: T,
    data: CallEventData<T>,
    field: keyof CallEventData<T> & string,
  ): Promise<boolean> {
    const value = String((data as Record<string, unknown>)[field]);
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`call-event:${callId}:${value}`}))`);
      const [seen] = await tx
        .select({ id: callEvents.id })
        .from(callEvents)
        .where(and(eq(callEvents.tenantId, tenantId), eq(callEvents.callId, callId), sql`${callEvents.extraData} ->> ${field} = ${value}`))
        .limit(1);
      if (seen) return false;
      await this.insertEvent(tx, tenantId, callId, type, data);
      return true;
    });
  }

  private async insertEvent(
    db: Executor,
    tenantId: string,
    callId: string,
    type: CallEventType,
    data: object,
    call?: ObservedCall,
  ): Promise<void> {
    await db.insert(callEvents).values({ tenantId, callId, type, extraData: data as Record<string, unknown> });
    // Heard as written, before a surrounding transaction commits: only a payload the webhook catalog refuses (a bug)
    // rolls one back, and a metric counted once too often is the lesser harm than threading hooks through commits.
    this.observer?.callEvent(tenantId, type, data, call);
  }

  /**
   * Ends the call once (a second end keeps the first status and time) with its duration (the provider's when it
   * gives one) and a summary of the turn metrics. The summary is refreshed by every end: the telephony provider's
   * end can arrive before the session has written its last turn.
   */
  async end(tenantId: string, callId: string, status: CallStatus, reason: string, durationMs?: number): Promise<Call | undefined> {
    // One transaction: the end, its audit entry and its `call.ended` webhook event are stored together or not at all.
    // The `ended_at is null` condition makes the end (and so the webhook event) happen once, however often it comes.
    return this.db.transaction(async (tx) => {
      const { summary, turnCount } = await this.turnStats(tx, callId);
      const [row] = await tx
        .update(calls)
        .set({
          status,
          endedAt: new Date(),
          endedReason: reason,
          durationMs:
            durationMs === undefined
              ? sql`(extract(epoch from (now() - coalesce(${calls.answeredAt}, ${calls.startedAt}, ${calls.createdAt}))) * 1000)::int`
              : Math.round(durationMs),
          metrics: summary,
        })
        .where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId), sql`${calls.endedAt} is null`))
        .returning();
      if (!row) {
        await tx
          .update(calls)
          .set({ metrics: summary })
          .where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId)));
        return undefined;
      }
      await this.insertEvent(tx, tenantId, callId, 'call.ended', { status, reason }, row);
      const { cost } = await callCost(tx, tenantId, callId);
      await publishEvent(tx, tenantId, 'call.ended', { ...endedPayload(row, reason, turnCount), cost }, { callId });
      return row;
    });
  }

  /**
   * Deletes a record with its turns and events: for a chat session whose first message failed, so a failed
   * request leaves no empty session behind.
   */
  async discard(tenantId: string, callId: string): Promise<void> {
    // Its webhook events (call.started, the greeting's turn) go too: the tenant never hears of a session that is not.
    await this.db.transaction(async (tx) => {
      await tx.delete(webhookEvents).where(and(eq(webhookEvents.tenantId, tenantId), eq(webhookEvents.callId, callId)));
      await tx.delete(calls).where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId)));
    });
  }

  /** Marks live calls as seen now (the heartbeat of the instance running their audio; a chat message). */
  async touch(callIds: string[], now = new Date()): Promise<void> {
    if (!callIds.length) return;
    await this.db
      .update(calls)
      .set({ lastSeenAt: now })
      .where(and(inArray(calls.id, callIds), isNull(calls.endedAt)));
  }

  /**
   * Ends, in one statement that any number of instances may run at once, the calls nobody is carrying: a voice call
   * never seen alive `connectTimeoutMs` after it was made (its media never connected: failed, `no_media`), one whose
   * heartbeat stopped `lostAfterMs` ago (the instance running it is gone: failed, `instance_lost`), and a chat session
   * silent for `chatIdleMs` (completed, `idle`). A live call, resumed ones included, is touched by its instance well
   * within these times, so it is never among them. Each ended call gets its `call.ended` event.
   */
  async endStale(
    limits: { connectTimeoutMs: number; lostAfterMs: number; chatIdleMs: number },
    now = new Date(),
  ): Promise<{ id: string; tenantId: string; reason: StaleReason }[]> {
    const before = (ms: number) => new Date(now.getTime() - ms);
    const chat = sql`${calls.direction} = 'chat'`;
    // One transaction: each call's end, audit entry and `call.ended` webhook event are stored together or not at all.
    return this.db.transaction(async (tx) => {
      const rows = await tx
        .update(calls)
        .set({
          status: sql`case when ${chat} then 'completed' else 'failed' end`,
          endedAt: now,
          // The StaleReason the mapping below gives the same row.
          endedReason: sql`case when ${chat} then 'idle' when ${calls.lastSeenAt} is null then 'no_media' else 'instance_lost' end`,
          // Up to when it was last seen: what happened after is not known.
          durationMs: sql`greatest(0, extract(epoch from (coalesce(${calls.lastSeenAt}, ${calls.createdAt}) - coalesce(${calls.answeredAt}, ${calls.startedAt}, ${calls.createdAt}))) * 1000)::int`,
        })
        .where(
          and(
            isNull(calls.endedAt),
            or(
              and(chat, sql`coalesce(${calls.lastSeenAt}, ${calls.createdAt}) < ${before(limits.chatIdleMs).toISOString()}::timestamptz`),
              and(sql`not (${chat})`, isNull(calls.lastSeenAt), lt(calls.createdAt, before(limits.connectTimeoutMs))),
              and(sql`not (${chat})`, lt(calls.lastSeenAt, before(limits.lostAfterMs))),
            ),
          ),
        )
        .returning();
      const ended = rows.map((r) => ({
        row: r,
        reason: (r.direction === 'chat' ? 'idle' : r.lastSeenAt ? 'instance_lost' : 'no_media') as StaleReason,
      }));
      for (const { row, reason } of ended) {
        const detail = STALE_DETAIL[reason];
        const { summary, turnCount } = await this.turnStats(tx, row.id);
        await tx.update(calls).set({ metrics: summary }).where(eq(calls.id, row.id));
        await this.insertEvent(tx, row.tenantId, row.id, 'call.ended', { status: row.status as CallStatus, reason, detail }, row);
        await publishEvent(
          tx,
          row.tenantId,
          'call.ended',
          {
            ...endedPayload({ ...row, metrics: summary }, reason, turnCount),
            detail,
            cost: (await callCost(tx, row.tenantId, row.id)).cost,
          },
          { callId: row.id },
        );
      }
      return ended.map(({ row, reason }) => ({ id: row.id, tenantId: row.tenantId, reason }));
    });
  }

  /**
   * Points the call at its stored recording (a call resumed after a restart replaces it with its own), with the
   * audit entry that says so (`stored`) and the `recording.ready` webhook event, all or none: the recording
   * is downloadable from the moment the event exists.
   */
  async setRecording(tenantId: string, callId: string, key: string, durationMs: number | null, stored?: RecordingStored): Promise<void> {
    const ms = durationMs === null ? null : Math.round(durationMs);
    // One statement, so one round trip (a transaction took five at the end of every call): the audit entry and the
    // event are made from the updated row, so a call of another tenant (or none) gets neither.
    const { ctes } = eventCtes(
      tenantId,
      'recording.ready',
      { call_id: callId, duration_ms: ms },
      { callId },
      { from: sql`u`, value: sql`'{}'::jsonb` },
    );
    const audit = stored
      ? sql`a as (insert into ${callEvents} (tenant_id, call_id, type, extra_data)
          select ${tenantId}, ${callId}, ${stored.type}, ${JSON.stringify(stored.data)}::jsonb from u returning 1),`
      : sql``;
    const result = await this.db.execute(sql`
      with u as (
        update ${calls} set recording_key = ${key}, recording_ms = ${ms}, updated_at = now()
        where tenant_id = ${tenantId} and id = ${callId} returning id),
      ${audit}
      ${ctes}
      select (select count(*) from u)::int as updated, (select pg_notify(${WEBHOOK_CHANNEL}, '')::text where exists (select 1 from d)) as notified`);
    if (!rowsOf<{ updated: number }>(result)[0]?.updated) throw notFound('Call');
    if (stored) this.observer?.callEvent(tenantId, stored.type, stored.data);
  }

  /**
   * A page of the tenant's calls, newest first (created_at desc, id desc: a stable order). `after` is the position
   * of the last call of the previous page (`cursor`): the next page starts strictly after it, so calls made
   * meanwhile never shift it, unlike an offset. `nextAfter` is there when more calls may follow.
   */
  async list(tenantId: string, page: { limit: number; offset: number; after?: CallCursor }, filter: CallFilter = {}) {
    const where = and(eq(calls.tenantId, tenantId), ...filterConditions(filter));
    // The position as PostgreSQL holds it (microseconds): a JS Date would round it to milliseconds and skip or repeat.
    const position = sql<string>`to_char(${calls.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')`;
    const after = page.after
      ? sql`(${calls.createdAt}, ${calls.id}) < ((${page.after.at}::timestamp at time zone 'UTC'), ${page.after.id}::uuid)`
      : undefined;
    const [rows, [total]] = await Promise.all([
      this.db
        .select({ call: calls, position })
        .from(calls)
        .where(and(where, after))
        .orderBy(desc(calls.createdAt), desc(calls.id))
        .limit(page.limit + 1)
        .offset(page.offset),
      this.db.select({ n: count() }).from(calls).where(where),
    ]);
    const items = rows.slice(0, page.limit);
    const last = rows.length > page.limit ? rows[page.limit - 1] : undefined;
    const nextAfter: CallCursor | undefined = last && { at: last.position, id: last.call.id };
    return { items: items.map((r) => r.call), total: total?.n ?? 0, nextAfter };
  }

  /**
   * Why the call's audio may not run now, or null: its tenant is suspended, or the user who started it (a web call)
   * was deactivated. Asked when a media socket starts and when the session starts, so that a call token issued
   * before a suspension opens nothing.
   */
  async mediaRefusal(tenantId: string, id: string): Promise<string | null> {
    const [row] = await this.db
      .select({ tenantStatus: tenants.status, userActive: users.isActive })
      .from(calls)
      .innerJoin(tenants, eq(tenants.id, calls.tenantId))
      .leftJoin(users, eq(users.id, calls.userId))
      .where(and(eq(calls.tenantId, tenantId), eq(calls.id, id)));
    if (!row) return 'call not found';
    if (row.tenantStatus === 'suspended') return 'tenant suspended';
    if (row.userActive === false) return 'user deactivated';
    return null;
  }

  async get(tenantId: string, id: string): Promise<Call> {
    const [row] = await this.db
      .select()
      .from(calls)
      .where(and(eq(calls.tenantId, tenantId), eq(calls.id, id)));
    if (!row) throw notFound('Call');
    return row;
  }

  async transcript(tenantId: string, callId: string): Promise<Turn[]> {
    await this.get(tenantId, callId);
    return this.turns(tenantId, callId);
  }

  /**
   * The call's turns in order, for a call the caller has just read (tenant and id checked): `transcript` without
   * reading the call row again (a call's session starts with it).
   */
  async turns(tenantId: string, callId: string): Promise<Turn[]> {
    const rows = await this.db
      .select()
      .from(callTranscripts)
      .where(and(eq(callTranscripts.tenantId, tenantId), eq(callTranscripts.callId, callId)))
      .orderBy(asc(callTranscripts.seq));
    return this.withCitations(tenantId, rows);
  }

  /**
   * Rows written before citations were stored whole hold bare chunk ids: those are resolved from the chunks still
   * stored (one query); a chunk since deleted (its document replaced or removed) can no longer be described, and
   * is left out rather than shown as an empty citation.
   */
  private async withCitations(tenantId: string, rows: (typeof callTranscripts.$inferSelect)[]): Promise<Turn[]> {
    const isId = (c: unknown): c is string => typeof c === 'string' && UUID.test(c);
    const legacy = [...new Set(rows.flatMap((r) => r.citations.filter(isId)))];
    const found = new Map<string, Citation>();
    if (legacy.length) {
      const chunks = await this.db
        .select({
          chunkId: documentChunks.id,
          documentId: documentChunks.documentId,
          documentTitle: documents.title,
          headingPath: documentChunks.headingPath,
          page: documentChunks.page,
          text: documentChunks.content,
        })
        .from(documentChunks)
        .innerJoin(documents, and(eq(documents.id, documentChunks.documentId), eq(documents.tenantId, documentChunks.tenantId)))
        .where(and(eq(documentChunks.tenantId, tenantId), inArray(documentChunks.id, legacy)));
      for (const c of chunks) found.set(c.chunkId, citationOf(c));
    }
    return rows.map((r) => ({
      ...r,
      citations: r.citations.flatMap((c) => (typeof c !== 'string' ? [c] : found.has(c) ? [found.get(c)!] : [])),
    }));
  }

  async events(tenantId: string, callId: string): Promise<CallEvent[]> {
    await this.get(tenantId, callId);
    return this.eventsOf(tenantId, callId);
  }

  /** The call's events in order, for a call the caller has just read: `events` without reading the call row again. */
  async eventsOf(tenantId: string, callId: string): Promise<CallEvent[]> {
    return this.db
      .select()
      .from(callEvents)
      .where(and(eq(callEvents.tenantId, tenantId), eq(callEvents.callId, callId)))
      .orderBy(asc(callEvents.occurredAt), asc(callEvents.createdAt));
  }

  /** p50 and max of each per-turn metric: what the call list shows without reading every turn. */
  async metricsSummary(callId: string): Promise<Record<string, { p50: number; max: number; n: number }>> {
    return (await this.turnStats(this.db, callId)).summary;
  }

  /** The metrics summary and the number of stored turns, read with the executor given (a transaction's). */
  private async turnStats(db: Executor, callId: string): Promise<{ summary: MetricsSummary; turnCount: number }> {
    const turns = await db.select({ metrics: callTranscripts.metrics }).from(callTranscripts).where(eq(callTranscripts.callId, callId));
    const byName = new Map<string, number[]>();
    for (const t of turns)
      for (const [k, v] of Object.entries(t.metrics)) if (Number.isFinite(v)) byName.set(k, [...(byName.get(k) ?? []), v]);
    const summary = Object.fromEntries(
      [...byName].map(([k, xs]) => {
        const sorted = xs.sort((a, b) => a - b);
        return [k, { p50: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted.at(-1)!, n: sorted.length }];
      }),
    );
    return { summary, turnCount: turns.length };
  }
}

/** Where a page of the call list starts: after this call (its created_at to the microsecond, UTC, and id). */
export interface CallCursor {
  at: string;
  id: string;
}

/** What the call list can be narrowed to; every given field must hold. */
export interface CallFilter {
  direction?: CallDirection;
  /** phone: inbound and outbound; web; chat. */
  channel?: CallChannel;
  status?: CallStatus;
  createdAfter?: Date;
  createdBefore?: Date;
  /** An E.164 number the call was from or to. */
  phoneNumber?: string;
  /** The tenant's number the call came in on or went out from. */
  phoneNumberId?: string;
  /** Words any of the call's transcript turns contains (English full text: stemmed, all words, any order). */
  text?: string;
}

export type CallChannel = 'phone' | 'web' | 'chat';
export const channelOf = (direction: CallDirection): CallChannel =>
  direction === 'inbound' || direction === 'outbound' ? 'phone' : direction;

function filterConditions(f: CallFilter): SQL[] {
  const where: SQL[] = [];
  if (f.direction) where.push(eq(calls.direction, f.direction));
  if (f.channel) where.push(f.channel === 'phone' ? inArray(calls.direction, ['inbound', 'outbound']) : eq(calls.direction, f.channel));
  if (f.status) where.push(eq(calls.status, f.status));
  if (f.createdAfter) where.push(gte(calls.createdAt, f.createdAfter));
  if (f.createdBefore) where.push(lt(calls.createdAt, f.createdBefore));
  if (f.phoneNumber) where.push(or(eq(calls.fromNumber, f.phoneNumber), eq(calls.toNumber, f.phoneNumber))!);
  if (f.phoneNumberId) where.push(eq(calls.phoneNumberId, f.phoneNumberId));
  if (f.text)
    // The expression is the one call_transcripts_text_search_idx indexes; plainto_tsquery takes any text safely
    // (no operators), and a query of stop words only matches nothing.
    where.push(
      sql`exists (select 1 from ${callTranscripts} t where t.call_id = ${calls.id} and t.tenant_id = ${calls.tenantId}
        and to_tsvector('english', t.text) @@ plainto_tsquery('english', ${f.text}))`,
    );
  return where;
}

type MetricsSummary = Record<string, { p50: number; max: number; n: number }>;

/** The audit entry of a stored recording: ours (saved, or recovered at start-up) or LiveKit Egress's. */
export type RecordingStored =
  | { type: 'recording.saved'; data: CallEventData<'recording.saved'> }
  | { type: 'recording.recovered'; data: CallEventData<'recording.recovered'> };

/** The `call.ended` webhook payload of a call row just ended. */
function endedPayload(row: Call, reason: string, turnCount: number): WebhookEventData<'call.ended'> {
  return {
    call_id: row.id,
    direction: row.direction,
    status: row.status,
    reason,
    from: row.fromNumber,
    to: row.toNumber,
    started_at: row.startedAt?.toISOString() ?? null,
    answered_at: row.answeredAt?.toISOString() ?? null,
    ended_at: (row.endedAt ?? new Date()).toISOString(),
    duration_ms: row.durationMs,
    turn_count: turnCount,
    metrics: row.metrics,
    recording_available: row.recordingKey !== null,
    metadata: row.extraData,
  };
}

/**
 * The webhook event a call event causes, if any. The audit trail's transfer events map onto the webhook catalog's:
 * - `transfer.requested` (the agent or the API asked for it) -> `transfer.started`;
 * - `transfer.connected` (Twilio dials the number in the agent's place: the caller is handed over) -> `transfer.completed`;
 * - `transfer.failed` (the hand-over to Twilio failed) -> `transfer.failed`.
 * `recording.ready` is published by setRecording, and call.started/call.ended where the call is made and ended.
 */
function webhookOf<T extends CallEventType>(
  type: T,
  data: CallEventData<T>,
): ((tx: Executor, tenantId: string, callId: string) => Promise<unknown>) | undefined {
  switch (type) {
    case 'transfer.requested': {
      const d = data as CallEventData<'transfer.requested'>;
      return (tx, tenantId, callId) =>
        publishEvent(tx, tenantId, 'transfer.started', { call_id: callId, to: d.to, reason: d.reason }, { callId });
    }
    case 'transfer.connected': {
      const d = data as CallEventData<'transfer.connected'>;
      return (tx, tenantId, callId) => publishEvent(tx, tenantId, 'transfer.completed', { call_id: callId, to: d.to }, { callId });
    }
    case 'transfer.failed': {
      const d = data as CallEventData<'transfer.failed'>;
      return (tx, tenantId, callId) =>
        publishEvent(tx, tenantId, 'transfer.failed', { call_id: callId, to: d.to, error: d.error }, { callId });
    }
    default:
      return undefined;
  }
}
