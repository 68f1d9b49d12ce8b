// A tenant's phone numbers: registration (a number of the platform's Twilio account, one owner per number across
// the platform, its voice and status webhooks pointed at us on Twilio and given back on removal), per-number call
// mode and agent overrides, and the lookup that tells an inbound call which tenant it belongs to.
import { and, asc, count, desc, eq } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { phoneNumbers, tenants } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import type { AgentOverrides } from './settings-schema.js';

/** E.164 as Twilio sends it in `To`; nothing is normalised, so what is stored is exactly what will be matched. */
export const E164 = /^\+[1-9]\d{6,14}$/;
/** A Twilio IncomingPhoneNumber SID, as Twilio prints it (lower-case hex). */
export const TWILIO_NUMBER_SID = /^PN[0-9a-f]{32}$/;
const NUMBER_UNIQUE_INDEX = 'phone_numbers_number_key';

export const TELEPHONY_MODES = ['media_stream', 'livekit'] as const;
export type TelephonyMode = (typeof TELEPHONY_MODES)[number];

/** A number's row; its overrides are typed by the column (db/schema.ts) and only ever written through `agentOverridesSchema` (services/settings-schema.ts). */
export type PhoneNumber = typeof phoneNumbers.$inferSelect;

export interface NewPhoneNumber {
  number: string;
  friendlyName?: string | null;
  providerSid?: string | null;
  isActive?: boolean;
  mode?: TelephonyMode | null;
  overrides?: AgentOverrides;
}
/** Fields left out keep their value; `overrides`, when given, replaces the whole object. */
export type PhoneNumberPatch = Partial<NewPhoneNumber>;

/**
 * A unique violation of the number index, from either driver (pg error code 23505; drizzle may wrap it in
 * `cause`). Another unique index failing must not be reported as "number taken".
 */
function isNumberTaken(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const { code, constraint } = e as { code?: string; constraint?: string };
    if (code === '23505') return constraint === undefined || constraint === NUMBER_UNIQUE_INDEX;
  }
  return false;
}

/** Where an incoming number's calls (voice webhook) and status callbacks go on Twilio; '' is none. */
export interface NumberWebhooks {
  voiceUrl: string;
  voiceMethod: string;
  statusCallback: string;
  statusCallbackMethod: string;
}

/**
 * The platform's Twilio account (TwilioRest): whether a number is one of its incoming numbers (with its SID and
 * current webhooks), and the change of a number's webhooks.
 */
export interface NumberOwnership {
  incomingNumber(number: string): Promise<({ sid: string } & NumberWebhooks) | undefined>;
  configureIncomingNumber(sid: string, webhooks: NumberWebhooks): Promise<void>;
}

/** Our webhooks on a number, from our public base URL (http/public-url.ts) and the webhook paths (telephony). */
export interface OurWebhooks {
  voiceUrl: string;
  statusCallback: string;
}

/** Where `extra_data` keeps a number's webhooks as they were before registration, to give them back on removal. */
const PREVIOUS_WEBHOOKS = 'twilio_previous_webhooks';
const previousWebhooks = (row: PhoneNumber): NumberWebhooks | undefined => row.extraData[PREVIOUS_WEBHOOKS] as NumberWebhooks | undefined;
const withoutPrevious = (extra: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(extra).filter(([k]) => k !== PREVIOUS_WEBHOOKS));
const ours = (w: OurWebhooks): NumberWebhooks => ({
  voiceUrl: w.voiceUrl,
  voiceMethod: 'POST',
  statusCallback: w.statusCallback,
  statusCallbackMethod: 'POST',
});
/** `skip`: numbers are not checked (development, PHONE_NUMBERS_SKIP_VERIFICATION); undefined: Twilio is not configured. */
export type NumberVerification = NumberOwnership | 'skip' | undefined;

// One answer for a number that is not the account's and for one registered already (by this tenant or another):
// whether a number exists on the platform, and who holds it, is not the caller's business.
const unavailable = () =>
  new AppError(
    'phone_number_unavailable',
    'This phone number cannot be registered: it is not one of the platform’s Twilio numbers, or it is registered already',
  );

const webhooksOf = (n: NumberWebhooks): NumberWebhooks => ({
  voiceUrl: n.voiceUrl,
  voiceMethod: n.voiceMethod,
  statusCallback: n.statusCallback,
  statusCallbackMethod: n.statusCallbackMethod,
});

export class PhoneNumberService {
  constructor(
    private readonly db: Db,
    private readonly verification: NumberVerification,
  ) {}

  /**
   * The number on the Twilio account (its SID and current webhooks); refuses a number that is not the account's (as
   * `unavailable`), or one given with another SID than the account's. Undefined when numbers are not checked.
   */
  private async verify(number: string, providerSid: string | null | undefined): Promise<({ sid: string } & NumberWebhooks) | undefined> {
    if (this.verification === 'skip') return undefined;
    if (!this.verification)
      throw new AppError(
        'twilio_not_configured',
        'Phone numbers are checked against the platform’s Twilio account, which is not configured',
      );
    const found = await this.verification.incomingNumber(number);
    if (!found || (providerSid && providerSid !== found.sid)) throw unavailable();
    return found;
  }

  /** Gives a number its webhooks from before registration back; a number the account no longer has is left alone. */
  private async restore(row: PhoneNumber): Promise<void> {
    const previous = previousWebhooks(row);
    if (typeof this.verification !== 'object' || !previous || !row.providerSid) return;
    await this.verification.configureIncomingNumber(row.providerSid, previous).catch((err: unknown) => {
      if ((err as { status?: number }).status !== 404) throw err;
    });
  }

  /**
   * Registers a number of the Twilio account. Uniqueness is left to the database's unique index, not to a prior
   * lookup, so two concurrent registrations of one number give one row and one `phone_number_unavailable`.
   * `webhooks`: ours, set on the number at Twilio once it is registered (the ones it had are kept for its removal),
   * so nobody configures them by hand. Numbers are not touched on Twilio when they are not checked (`skip`).
   */
  async create(tenantId: string, input: NewPhoneNumber, webhooks?: OurWebhooks): Promise<PhoneNumber> {
    const found = await this.verify(input.number, input.providerSid);
    const configure = found && webhooks;
    const [row] = await this.db
      .insert(phoneNumbers)
      .values({
        tenantId,
        number: input.number,
        friendlyName: input.friendlyName ?? null,
        providerSid: input.providerSid ?? found?.sid ?? null,
        isActive: input.isActive ?? true,
        mode: input.mode ?? null,
        overrides: input.overrides ?? {},
        extraData: configure ? { [PREVIOUS_WEBHOOKS]: webhooksOf(found) } : {},
      })
      // Only a clash on the number is absorbed (another unique index failing still throws); a concurrent insert
      // of the same number makes this one wait for it and then return no row.
      .onConflictDoNothing({ target: phoneNumbers.number })
      .returning();
    // A number held already is not touched on Twilio: its owner's webhooks stay.
    if (!row) throw unavailable();
    if (configure && typeof this.verification === 'object') {
      try {
        await this.verification.configureIncomingNumber(found.sid, ours(webhooks));
      } catch (err) {
        // Not registered unless it reaches us: the row goes, Twilio's error is the answer.
        await this.db.delete(phoneNumbers).where(eq(phoneNumbers.id, row.id));
        throw err;
      }
    }
    return row;
  }

  async list(tenantId: string, page: { limit: number; offset: number }): Promise<{ items: PhoneNumber[]; total: number }> {
    const where = eq(phoneNumbers.tenantId, tenantId);
    const [items, [total]] = await Promise.all([
      this.db
        .select()
        .from(phoneNumbers)
        .where(where)
        .orderBy(desc(phoneNumbers.createdAt), desc(phoneNumbers.id))
        .limit(page.limit)
        .offset(page.offset),
      this.db.select({ n: count() }).from(phoneNumbers).where(where),
    ]);
    return { items, total: total?.n ?? 0 };
  }

  async get(tenantId: string, id: string): Promise<PhoneNumber> {
    const [row] = await this.db
      .select()
      .from(phoneNumbers)
      .where(and(eq(phoneNumbers.tenantId, tenantId), eq(phoneNumbers.id, id)));
    if (!row) throw notFound('Phone number');
    return row;
  }

  async update(tenantId: string, id: string, patch: PhoneNumberPatch, webhooks?: OurWebhooks): Promise<PhoneNumber> {
    // Moving to another number checks it like a registration; another tenant's id is 404 before Twilio is asked.
    let found: ({ sid: string } & NumberWebhooks) | undefined;
    let before: PhoneNumber | undefined;
    if (patch.number !== undefined) {
      before = await this.get(tenantId, id);
      if (patch.number !== before.number) found = await this.verify(patch.number, patch.providerSid);
    }
    const sid = found?.sid;
    const configure = found && webhooks && before ? { found, webhooks, before } : undefined;
    const values = {
      ...(configure && { extraData: { ...withoutPrevious(configure.before.extraData), [PREVIOUS_WEBHOOKS]: webhooksOf(configure.found) } }),
      ...(patch.number !== undefined && { number: patch.number }),
      ...(patch.friendlyName !== undefined && { friendlyName: patch.friendlyName }),
      ...((patch.providerSid !== undefined || sid) && { providerSid: patch.providerSid ?? sid }),
      ...(patch.isActive !== undefined && { isActive: patch.isActive }),
      ...(patch.mode !== undefined && { mode: patch.mode }),
      ...(patch.overrides !== undefined && { overrides: patch.overrides }),
    };
    // An empty patch changes nothing; an UPDATE with no columns is not valid SQL.
    if (Object.keys(values).length === 0) return this.get(tenantId, id);
    try {
      // Scoped by tenant in the WHERE: another tenant's id matches no row (404), and never reaches the unique
      // index, so a PATCH cannot be used to probe which numbers exist elsewhere. UPDATE has no ON CONFLICT, so
      // a clash is the index's error; inside a transaction the failed statement is rolled back explicitly, which
      // the PGlite socket server of the wire tests needs (a failed autocommit statement drops its connection).
      const [row] = await this.db.transaction((tx) =>
        tx
          .update(phoneNumbers)
          .set(values)
          .where(and(eq(phoneNumbers.tenantId, tenantId), eq(phoneNumbers.id, id)))
          .returning(),
      );
      if (!row) throw notFound('Phone number');
      // The new number reaches us; the one left gets its webhooks back.
      if (configure && typeof this.verification === 'object') {
        await this.verification.configureIncomingNumber(configure.found.sid, ours(configure.webhooks));
        await this.restore(configure.before);
      }
      return row;
    } catch (err) {
      if (isNumberTaken(err)) throw unavailable();
      throw err;
    }
  }

  /**
   * Calls that came in on the number keep their records; the database sets their phone_number_id to null. The
   * number's webhooks on Twilio are given back first (as they were before registration); if Twilio cannot be told,
   * the number stays registered and the error is the answer, so a retry can finish it.
   */
  async remove(tenantId: string, id: string): Promise<void> {
    if (typeof this.verification === 'object') await this.restore(await this.get(tenantId, id));
    const rows = await this.db
      .delete(phoneNumbers)
      .where(and(eq(phoneNumbers.tenantId, tenantId), eq(phoneNumbers.id, id)))
      .returning({ id: phoneNumbers.id });
    if (rows.length === 0) throw notFound('Phone number');
  }

  /**
   * Which tenant an inbound call to `number` belongs to (the Twilio webhook's `To`), or null. An exact match on
   * an active number: a switched-off number answers no calls.
   */
  /** The number outbound calls come from when none is named: the tenant's oldest active one. */
  async firstActive(tenantId: string): Promise<PhoneNumber | undefined> {
    const [row] = await this.db
      .select()
      .from(phoneNumbers)
      .where(and(eq(phoneNumbers.tenantId, tenantId), eq(phoneNumbers.isActive, true)))
      .orderBy(asc(phoneNumbers.createdAt), asc(phoneNumbers.id))
      .limit(1);
    return row;
  }

  async findForInbound(number: string): Promise<{ tenantId: string; phoneNumber: PhoneNumber } | null> {
    // A suspended tenant's numbers answer like unknown ones: its agent must not take calls.
    const [row] = await this.db
      .select({ number: phoneNumbers })
      .from(phoneNumbers)
      .innerJoin(tenants, eq(tenants.id, phoneNumbers.tenantId))
      .where(and(eq(phoneNumbers.number, number), eq(phoneNumbers.isActive, true), eq(tenants.status, 'active')));
    return row ? { tenantId: row.number.tenantId, phoneNumber: row.number } : null;
  }
}
