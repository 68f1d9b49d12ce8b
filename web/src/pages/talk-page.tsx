// "Talk to your agent": a browser call through the microphone (audio/web-call-client.ts), with mute, keypad and
// hang-up. The conversation is built as it happens from the call's live messages (lib/live-transcript.ts); once the
// call ends, the stored transcript (what the caller actually heard) replaces it.
import { Alert, Anchor, Badge, Button, Group, Paper, SimpleGrid, Stack, Tabs, Text, Title } from '@mantine/core';
import { useEffect, useReducer, useRef, useState } from 'react';
import { Link } from 'react-router';
import { api, must } from '../api/client';
import { messageOf } from '../api/errors';
import type { Turn } from '../api/types';
import { ChatPanel } from '../components/chat-panel';
import { sameOriginStreamUrl, WebCallClient, type CallState, type ServerMessage } from '../audio/web-call-client';
import { applyLiveMessage, emptyTranscript } from '../lib/live-transcript';

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

/** A line of the conversation, live or stored. */
interface Line {
  key: number;
  speaker: string;
  text: string;
  interrupted: boolean;
  voiceToVoiceMs?: number;
}

const RESET = { type: 'reset' } as const;
function reducer(s: typeof emptyTranscript, msg: ServerMessage | typeof RESET) {
  return msg.type === 'reset' ? emptyTranscript : applyLiveMessage(s, msg);
}

export default function TalkPage() {
  const client = useRef<WebCallClient | null>(null);
  const [state, setState] = useState<CallState>('idle');
  const [callId, setCallId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [muted, setMuted] = useState(false);
  const [speaking, setSpeaking] = useState(false);
  const [live, dispatch] = useReducer(reducer, emptyTranscript);
  const [stored, setStored] = useState<Turn[] | null>(null);

  useEffect(() => () => client.current?.hangup(), []);

  // Once the call is over: the transcript as stored (what was heard, interruptions as the service decided them).
  const ended = state === 'ended';
  useEffect(() => {
    if (!ended || !callId) return;
    let stale = false;
    must(api.GET('/api/v1/calls/{id}/transcript', { params: { path: { id: callId } } }))
      .then((t) => !stale && setStored(t.items))
      .catch(() => undefined); // the live lines stay; the call page has the full record
    return () => {
      stale = true;
    };
  }, [ended, callId]);

  const lines: Line[] = stored
    ? stored.map((t) => ({
        key: t.seq,
        speaker: t.speaker,
        text: t.text,
        interrupted: t.interrupted,
        voiceToVoiceMs: t.metrics.voice_to_voice,
      }))
    : live.turns.map((t) => ({ ...t, key: t.id, voiceToVoiceMs: t.latency?.voice_to_voice }));

  async function talk() {
    setError(null);
    setStored(null);
    dispatch(RESET);
    setMuted(false);
    if (!navigator.mediaDevices?.getUserMedia) {
      setError('This browser cannot use a microphone here (a secure page, https or localhost, is needed).');
      return;
    }
    try {
      const call = await must(api.POST('/api/v1/calls/web', { body: {} }));
      setCallId(call.call_id);
      const c = new WebCallClient({
        url: sameOriginStreamUrl(call.stream_url),
        onState: setState,
        onPlaying: setSpeaking,
        onError: setError,
        onMessage: dispatch,
      });
      client.current = c;
      await c.start();
    } catch (err) {
      setError(messageOf(err));
      setState((s) => (s === 'idle' ? 'idle' : 'ended'));
    }
  }

  const inCall = state === 'connecting' || state === 'live';
  return (
    <Stack maw={900}>
      <Title order={2}>Talk</Title>
      <Tabs defaultValue="voice" keepMounted={false}>
        <Tabs.List mb="sm">
          <Tabs.Tab value="voice">Voice</Tabs.Tab>
          <Tabs.Tab value="chat">Text chat</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="chat">
          <ChatPanel />
        </Tabs.Panel>
        <Tabs.Panel value="voice">
          <Stack>
            <Paper withBorder p="md">
              <Stack>
                <Group justify="space-between" wrap="wrap">
                  <Group gap="xs">
                    <Badge color={state === 'live' ? 'red.8' : 'gray'} variant={state === 'live' ? 'filled' : 'light'}>
                      {state === 'live' ? 'live' : state}
                    </Badge>
                    {state === 'live' && <Badge variant="light">{speaking ? 'agent speaking' : (live.agentState ?? 'listening')}</Badge>}
                  </Group>
                  {!inCall ? (
                    <Button size="md" onClick={() => void talk()}>
                      {state === 'ended' ? 'Talk again' : 'Talk to your agent'}
                    </Button>
                  ) : (
                    <Group gap="xs">
                      <Button
                        variant={muted ? 'filled' : 'default'}
                        onClick={() => {
                          client.current?.mute(!muted);
                          setMuted(!muted);
                        }}
                        disabled={state !== 'live'}
                      >
                        {muted ? 'Unmute' : 'Mute'}
                      </Button>
                      <Button color="red" onClick={() => client.current?.hangup()}>
                        Hang up
                      </Button>
                    </Group>
                  )}
                </Group>
                {state === 'idle' && (
                  <Text size="sm" c="dimmed">
                    Your browser will ask for the microphone. Speak as a caller would; interrupt the agent whenever you like. Use headphones
                    for the best barge-in.
                  </Text>
                )}
                {error && (
                  <Alert color="red" role="alert">
                    {error}
                  </Alert>
                )}
                {state === 'live' && (
                  <SimpleGrid cols={3} maw={220} spacing={6} aria-label="Keypad">
                    {KEYS.map((k) => (
                      <Button key={k} variant="default" onClick={() => client.current?.dtmf(k)}>
                        {k}
                      </Button>
                    ))}
                  </SimpleGrid>
                )}
              </Stack>
            </Paper>
            {(lines.length > 0 || callId) && (
              <Paper withBorder p="md" aria-live="polite">
                <Group justify="space-between" mb="xs">
                  <Text fw={500}>Conversation</Text>
                  {callId && state === 'ended' && (
                    <Anchor component={Link} to={`/calls/${callId}`} size="sm">
                      Open the call’s page
                    </Anchor>
                  )}
                </Group>
                <Stack gap={6}>
                  {lines.map((t) => (
                    <div key={t.key}>
                      <Group gap={6}>
                        <Text size="xs" fw={700} tt="capitalize">
                          {t.speaker}
                        </Text>
                        {t.interrupted && (
                          <Badge size="xs" color="orange" variant="light">
                            interrupted
                          </Badge>
                        )}
                        {t.voiceToVoiceMs !== undefined && (
                          <Badge size="xs" color="gray" title="From the end of your speech to the agent’s first audio">
                            {Math.round(t.voiceToVoiceMs)} ms
                          </Badge>
                        )}
                      </Group>
                      <Text size="sm" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>
                        {t.text}
                      </Text>
                    </div>
                  ))}
                  {!stored && live.interim && (
                    <div>
                      <Text size="xs" fw={700}>
                        Caller
                      </Text>
                      <Text size="sm" c="dimmed" fs="italic">
                        {live.interim}…
                      </Text>
                    </div>
                  )}
                  {lines.length === 0 && !live.interim && (
                    <Text size="sm" c="dimmed">
                      The conversation appears here as it happens.
                    </Text>
                  )}
                </Stack>
              </Paper>
            )}
          </Stack>
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}
