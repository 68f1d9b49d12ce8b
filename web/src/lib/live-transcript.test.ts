import { describe, expect, it } from 'vitest';
import { applyLiveMessage, emptyTranscript, type LiveTranscript } from './live-transcript';

const play = (...msgs: { type: string; [k: string]: unknown }[]): LiveTranscript => msgs.reduce(applyLiveMessage, emptyTranscript);
const said = (s: LiveTranscript) => s.turns.map((t) => `${t.speaker}${t.interrupted ? '!' : ''}: ${t.text}`);

describe('the live transcript', () => {
  it('builds turns from the greeting, the caller’s words and the agent’s sentences', () => {
    const s = play(
      { type: 'agent.state', state: 'speaking' },
      { type: 'agent.sentence', text: 'Hello, Sunrise clinic.' },
      { type: 'agent.state', state: 'listening' },
      { type: 'caller.interim', text: 'where is' },
      { type: 'caller.interim', text: 'where is the parking' },
    );
    expect(s.interim).toBe('where is the parking');
    const t = play(
      { type: 'agent.sentence', text: 'Hello, Sunrise clinic.' },
      { type: 'agent.state', state: 'listening' },
      { type: 'caller.interim', text: 'where is' },
      { type: 'caller.final', text: 'Where is the free parking?', start_ms: 9000, end_ms: 10400 },
      { type: 'agent.state', state: 'thinking' },
      { type: 'agent.state', state: 'speaking' },
      { type: 'agent.sentence', text: 'Free parking is in the garage.' },
      { type: 'agent.sentence', text: 'It closes at eight.' },
      { type: 'turn.latency', retrieval: 40, voice_to_voice: 900 },
      { type: 'agent.state', state: 'listening' },
    );
    expect(said(t)).toEqual([
      'agent: Hello, Sunrise clinic.',
      'caller: Where is the free parking?',
      'agent: Free parking is in the garage. It closes at eight.',
    ]);
    expect(t.interim).toBe('');
    expect(t.agentState).toBe('listening');
    expect(t.turns[0]!.latency).toBeUndefined();
    expect(t.turns[2]!.latency).toEqual({ retrieval: 40, voice_to_voice: 900 });
  });

  it('marks the reply the caller talked over, and gives it its latency even when it reports after the next turn', () => {
    const s = play(
      { type: 'caller.final', text: 'Where is the parking?', start_ms: 0, end_ms: 1000 },
      { type: 'agent.state', state: 'speaking' },
      { type: 'agent.sentence', text: 'Free parking is in the garage on Elm Street.' },
      { type: 'clear' },
      { type: 'caller.final', text: 'Sorry, wait.', start_ms: 3000, end_ms: 4000 },
      { type: 'turn.latency', voice_to_voice: 1200 },
      { type: 'agent.state', state: 'thinking' },
      { type: 'agent.state', state: 'speaking' },
      { type: 'agent.sentence', text: 'Of course.' },
    );
    expect(said(s)).toEqual([
      'caller: Where is the parking?',
      'agent!: Free parking is in the garage on Elm Street.',
      'caller: Sorry, wait.',
      'agent: Of course.',
    ]);
    expect(s.turns[1]!.latency).toEqual({ voice_to_voice: 1200 });
    expect(s.turns[3]!.latency).toBeUndefined();
  });

  it('ignores a clear while the agent is quiet, and messages it does not know', () => {
    const s = play(
      { type: 'agent.sentence', text: 'Hi.' },
      { type: 'agent.state', state: 'listening' },
      { type: 'clear' },
      { type: 'mark', name: 'm1' },
      { type: 'future.thing' },
    );
    expect(said(s)).toEqual(['agent: Hi.']);
  });
});
