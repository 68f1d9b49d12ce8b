// The analysis without a model (no key, or the tenant's LLM is the local responder): an extractive summary, the
// outcome by rules, and the extraction fields its patterns can find in the caller's words. It says what it could not
// do: `partial: true`, success not judged, and `filled` lists the fields it found.
import type { JsonSchema } from '../lib/json-schema.js';
import type { AnalysisInput, AnalysisResult, Analyzer } from './analyzer.js';

const MAX_QUOTE_CHARS = 200;
const FAILED_STATUSES = new Set(['failed', 'busy', 'no_answer', 'canceled']);

export class LocalAnalyzer implements Analyzer {
  readonly engine = 'local';
  readonly model = null;

  analyze(input: AnalysisInput): Promise<AnalysisResult> {
    const caller = input.turns
      .filter((t) => t.speaker === 'caller')
      .map((t) => t.text.trim())
      .filter(Boolean);
    const agent = input.turns
      .filter((t) => t.speaker === 'agent')
      .map((t) => t.text.trim())
      .filter(Boolean);
    const notes: string[] = ['Analysed by rules (no language model): success is not judged against the rubric.'];

    const ruled = ruleOutcome(input, caller);
    let outcome: string | null = ruled;
    if (!input.outcomes.includes(ruled)) {
      outcome = null;
      notes.push(`The rules found "${ruled}", which is not one of the tenant's outcomes.`);
    }

    const extracted: Record<string, unknown> = {};
    const schema = input.extractionSchema;
    if (schema) {
      const text = caller.join('\n');
      for (const [name, field] of Object.entries(schema.properties)) {
        const value = extractField(name, field, text);
        if (value !== undefined) extracted[name] = value;
      }
    }
    return Promise.resolve({
      summary: summaryOf(caller, agent),
      outcome,
      success: { passed: null, reason: 'Not judged: the local engine does not evaluate the rubric.' },
      extracted,
      engine: this.engine,
      model: null,
      partial: true,
      filled: Object.keys(extracted),
      notes: notes.join(' '),
    });
  }
}

/**
 * A voicemail greeting heard on an outbound call: the answering machine's usual words in the other side's first
 * turns ("please leave a message after the tone", "is not available", "the mailbox is full").
 */
const VOICEMAIL =
  /\b(?:leave (?:me |us )?(?:a |your )?(?:message|name and number)|after the (?:tone|beep)|(?:is|am|are) (?:not available|unavailable)|can'?t (?:come|get) to the phone|voice ?mail|mailbox is full|record your message)\b/i;

/**
 * A transfer wins, then a failed call, then an answering machine (outbound), then silence from the caller; anything
 * else counts as resolved.
 */
function ruleOutcome(input: AnalysisInput, caller: string[]): string {
  if (input.events.some((e) => e === 'transfer.connected' || e === 'transfer.requested')) return 'transferred';
  if (FAILED_STATUSES.has(input.status)) return 'failed';
  if (input.direction === 'outbound' && caller.slice(0, 2).some((t) => VOICEMAIL.test(t))) return 'voicemail';
  if (caller.length === 0) return 'abandoned';
  return 'resolved';
}

const quote = (s: string) => (s.length > MAX_QUOTE_CHARS ? `${s.slice(0, MAX_QUOTE_CHARS - 1)}…` : s);

/** The caller's first request and the agent's last answer: what was asked and how it was left. */
function summaryOf(caller: string[], agent: string[]): string {
  if (caller.length === 0) return 'The caller said nothing.';
  const parts = [`The caller said: "${quote(caller[0]!)}"`];
  if (agent.length) parts.push(`The agent last said: "${quote(agent.at(-1)!)}"`);
  return parts.join(' ');
}

// Patterns for fields by the words of their names; only top-level strings, numbers and enums are filled.
const NAME = /\b(?:my name is|name's|this is|i am|i'm|call me)\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)/;
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;
const PHONE = /\+?\d[\d\s().-]{6,}\d/;
const WEEKDAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|tomorrow)';
const MONTH =
  '(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)';
const CLOCK = '(?:\\d{1,2}(?::\\d{2})?\\s*(?:am|pm|a\\.m\\.|p\\.m\\.)|\\d{1,2}:\\d{2}|noon)';
const DAY = `(?:(?:next\\s+)?${WEEKDAY}|${MONTH}\\s+\\d{1,2}(?:st|nd|rd|th)?|\\d{1,2}(?:st|nd|rd|th)?\\s+(?:of\\s+)?${MONTH}|\\d{4}-\\d{2}-\\d{2})`;
const WHEN = new RegExp(`(?:${DAY}(?:\\s+(?:at\\s+)?${CLOCK})?|${CLOCK}(?:\\s+(?:on\\s+)?${DAY})?)`, 'i');
const REFERENCE = /\b(?:number|no\.?|#|id|reference|ref)\s*(?:is\s+)?([A-Z0-9][A-Z0-9-]{2,})\b/i;
const DIGITS = /\b\d{3,}\b/;
const HEADCOUNT =
  /\b(\d+)\s+(?:people|persons|guests|adults|of us|seats)\b|\b(?:party|table|group) of (\d+)\b|\bfor (\d+)\b(?!\s*(?::|am\b|pm\b|a\.m|p\.m|o'clock))/i;

const words = (name: string) =>
  name
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);

function extractField(name: string, field: JsonSchema, text: string): unknown {
  if (!text) return undefined;
  const w = words(name);
  const has = (...xs: string[]) => xs.some((x) => w.includes(x));
  if (field.type === 'string') {
    if (field.enum) {
      const lower = text.toLowerCase();
      return field.enum.find((e) => new RegExp(`\\b${e.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(lower));
    }
    if (has('email', 'mail')) return EMAIL.exec(text)?.[0];
    if (has('phone', 'mobile', 'callback', 'telephone')) return PHONE.exec(text)?.[0].trim();
    if (has('name') && !has('company', 'business', 'product')) return NAME.exec(text)?.[1];
    if (has('date', 'time', 'appointment', 'when', 'day', 'at', 'slot', 'booking')) return WHEN.exec(text)?.[0];
    if (has('number', 'id', 'order', 'reference', 'ref', 'account', 'invoice', 'ticket', 'code'))
      return REFERENCE.exec(text)?.[1] ?? DIGITS.exec(text)?.[0];
    return undefined;
  }
  if (field.type === 'number' || field.type === 'integer') {
    let found: string | undefined;
    if (has('people', 'guests', 'persons', 'party', 'size', 'seats', 'adults')) found = HEADCOUNT.exec(text)?.slice(1).find(Boolean);
    else if (has('number', 'id', 'order', 'account', 'reference', 'invoice', 'ticket'))
      found = /^\d+$/.exec(REFERENCE.exec(text)?.[1] ?? '')?.[0] ?? DIGITS.exec(text)?.[0];
    else {
      // A number next to a word of the field's name: "3 rooms", "quantity 2".
      for (const word of w.filter((x) => x.length > 2)) {
        const near = new RegExp(`\\b(\\d+(?:\\.\\d+)?)\\s+${word}|\\b${word}\\D{0,15}?(\\d+(?:\\.\\d+)?)`, 'i').exec(text);
        found = near?.[1] ?? near?.[2];
        if (found) break;
      }
    }
    if (!found) return undefined;
    const n = Number(found);
    if (!Number.isFinite(n) || (field.type === 'integer' && !Number.isSafeInteger(n))) return undefined;
    return field.enum && !field.enum.includes(n) ? undefined : n;
  }
  return undefined;
}
