// The Talk page's conversation as it happens, built from the web call's live messages (the server's
// lib/live-messages.ts): caller.interim / caller.final for the caller's words, agent.sentence for what the agent
// starts saying, `clear` for a barge-in, agent.state and turn.latency. A pure reducer, so it is tested without a
// browser. Once the call ends the page shows the stored transcript instead (what was actually heard).
import type { WebCallServerMessage } from '../api/types';

export type AgentState = Extract<WebCallServerMessage, { type: 'agent.state' }>['state'];
export type TurnLatency = Omit<Extract<WebCallServerMessage, { type: 'turn.latency' }>, 'type'>;

export interface LiveTurn {
  id: number;
  speaker: 'caller' | 'agent';
  text: string;
  interrupted: boolean;
  /** An agent turn answering the caller (not the greeting or a prompt): a turn.latency may belong to it. */
  isReply: boolean;
  /** An agent reply's latencies (turn.latency), once the reply is over. */
  latency?: TurnLatency;
}

export interface LiveTranscript {
  turns: LiveTurn[];
  /** The caller's words in the turn still being spoken (caller.interim), until caller.final. */
  interim: string;
  agentState: AgentState | null;
  /** The agent's turn that is receiving sentences (none once the caller's next turn ends). */
  speaking: number | null;
  /** The agent's reply to the caller's last turn, which the next turn.latency belongs to. */
  reply: number | null;
  nextId: number;
}

export const emptyTranscript: LiveTranscript = { turns: [], interim: '', agentState: null, speaking: null, reply: null, nextId: 1 };

const update = (s: LiveTranscript, id: number | null, f: (t: LiveTurn) => LiveTurn): LiveTurn[] =>
  s.turns.map((t) => (t.id === id ? f(t) : t));

/** The transcript after one message (a message of another type, or an unknown one, changes nothing). */
export function applyLiveMessage(s: LiveTranscript, msg: { type: string }): LiveTranscript {
  const m = msg as WebCallServerMessage;
  switch (m.type) {
    case 'caller.interim':
      return { ...s, interim: m.text };
    case 'caller.final': {
      const turn: LiveTurn = { id: s.nextId, speaker: 'caller', text: m.text, interrupted: false, isReply: false };
      // The agent's next sentences start a new turn; a latency still to come belongs to the previous reply.
      return { ...s, turns: [...s.turns, turn], interim: '', speaking: null, reply: null, nextId: s.nextId + 1 };
    }
    case 'agent.sentence': {
      if (s.speaking !== null) {
        return { ...s, turns: update(s, s.speaking, (t) => ({ ...t, text: `${t.text} ${m.text}` })) };
      }
      const answersCaller = s.turns.at(-1)?.speaker === 'caller';
      const turn: LiveTurn = { id: s.nextId, speaker: 'agent', text: m.text, interrupted: false, isReply: answersCaller };
      return {
        ...s,
        turns: [...s.turns, turn],
        speaking: turn.id,
        reply: answersCaller ? turn.id : s.reply,
        nextId: s.nextId + 1,
      };
    }
    case 'clear':
      // The caller talked over the agent: what it was saying is cut short.
      if (s.speaking === null) return s;
      return { ...s, turns: update(s, s.speaking, (t) => ({ ...t, interrupted: true })), speaking: null };
    case 'agent.state':
      return { ...s, agentState: m.state, speaking: m.state === 'speaking' ? s.speaking : null };
    case 'turn.latency': {
      const latency = Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'type')) as TurnLatency;
      // The reply to the caller's last turn; after the caller's next turn has ended (an interrupted reply reports
      // last), the latest reply still without one.
      const target = s.reply ?? [...s.turns].reverse().find((t) => t.isReply && !t.latency)?.id ?? null;
      if (target === null) return s;
      return { ...s, turns: update(s, target, (t) => ({ ...t, latency })), reply: null };
    }
    default:
      return s;
  }
}
