// The local engine's rules: outcome, extractive summary, and the fields its patterns fill (by name and type).
import { describe, expect, it } from 'vitest';
import type { AnalysisInput } from './analyzer.js';
import { LocalAnalyzer } from './local-analyzer.js';

const base: AnalysisInput = {
  agentName: 'Assistant',
  direction: 'chat',
  status: 'completed',
  endReason: null,
  turns: [],
  events: [],
  outcomes: ['resolved', 'transferred', 'voicemail', 'abandoned', 'failed'],
  rubric: null,
  extractionSchema: null,
};
const analyze = (input: Partial<AnalysisInput>) => new LocalAnalyzer().analyze({ ...base, ...input });

describe('LocalAnalyzer', () => {
  it('says voicemail when an outbound call reached an answering machine, and only then', async () => {
    const machine = [
      { speaker: 'agent' as const, text: 'Hello, this is the clinic calling about your appointment.' },
      {
        speaker: 'caller' as const,
        text: "Hi, you've reached Sam. I can't come to the phone right now, please leave a message after the tone.",
      },
    ];
    expect((await analyze({ direction: 'outbound', turns: machine })).outcome).toBe('voicemail');
    // The same words from someone who called in are a person talking about voicemail, not a machine.
    expect((await analyze({ direction: 'inbound', turns: machine })).outcome).toBe('resolved');
    const person = [
      { speaker: 'agent' as const, text: 'Hello, this is the clinic calling about your appointment.' },
      { speaker: 'caller' as const, text: 'Oh hi, yes, Tuesday works for me.' },
    ];
    expect((await analyze({ direction: 'outbound', turns: person })).outcome).toBe('resolved');
  });

  it('fills the fields its patterns find in the caller’s words, by name and type, and says it is partial', async () => {
    const r = await analyze({
      turns: [
        { speaker: 'agent', text: 'Hello, how can I help?' },
        {
          speaker: 'caller',
          text: 'Hi, my name is Maria Lopez. I would like an appointment on Tuesday at 3 pm for 4 people, my order number is 48213. I need 2 rooms. Email me at maria@example.com or call +1 415 555 0100.',
        },
        { speaker: 'agent', text: 'Booked.' },
      ],
      extractionSchema: {
        type: 'object',
        properties: {
          caller_name: { type: 'string' },
          appointment_time: { type: 'string' },
          party_size: { type: 'integer' },
          rooms: { type: 'integer' },
          order_number: { type: 'integer' },
          email: { type: 'string' },
          phone: { type: 'string' },
          kind: { type: 'string', enum: ['complaint', 'appointment'] },
          vip: { type: 'boolean' },
        },
      },
    });
    expect(r.extracted).toEqual({
      caller_name: 'Maria Lopez',
      appointment_time: 'Tuesday at 3 pm',
      party_size: 4,
      rooms: 2,
      order_number: 48213,
      email: 'maria@example.com',
      phone: '+1 415 555 0100',
      kind: 'appointment',
    });
    expect(r).toMatchObject({ engine: 'local', partial: true, outcome: 'resolved', success: { passed: null } });
    expect(r.summary).toMatch(/^The caller said: "Hi, my name is Maria Lopez.*" The agent last said: "Booked."$/);
  });

  it('rules the outcome: transfer, failed status, silence, else resolved; null when not among the tenant’s', async () => {
    const said = [{ speaker: 'caller' as const, text: 'hello' }];
    expect((await analyze({ turns: said, events: ['transfer.requested'] })).outcome).toBe('transferred');
    expect((await analyze({ turns: said, status: 'failed' })).outcome).toBe('failed');
    expect((await analyze({})).outcome).toBe('abandoned');
    expect((await analyze({ turns: said })).outcome).toBe('resolved');
    const custom = await analyze({ turns: said, outcomes: ['booked', 'not_booked'] });
    expect(custom.outcome).toBeNull();
    expect(custom.notes).toMatch(/not one of the tenant's outcomes/);
  });
});
