// "Talk to your agent": a browser call through the microphone (audio/web-call-client.ts), with mute, keypad and
// hang-up, and the conversation as it is stored (polled) plus whatever live messages the server sends.
import { Alert, Anchor, Badge, Button, Group, Paper, SimpleGrid, Stack, Tabs, Text, Title } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { Link } from 'react-router';
import { api, must } from '../api/client';
import { messageOf } from '../api/errors';
import type { Turn } from '../api/types';
import { ChatPanel } from '../components/chat-panel';
import { sameOriginStreamUrl, WebCallClient, type CallState, type ServerMessage } from '../audio/web-call-client';
import { useInterval } from '../lib/use-load';

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

/** What a live message says, if it is one the page knows how to show (the protocol is growing). */
function describe(msg: ServerMessage): string | null {
  if (msg.type === 'state' && typeof msg.state === 'string') return `Agent is ${msg.state}`;
  const text = typeof msg.text === 'string' ? msg.text : null;
  if (text === null) return null;
  return `${msg.type}: ${text}`;
}

export default function TalkPage() {
  const client = useRef<WebCallClient | null>(null);
  const [state, setState] = useState<CallState>('idle');
  const [callId, setCallId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [muted, setMuted] = useState(false);
  const [speaking, setSpeaking] = useState(false);
  const [agentState, setAgentState] = useState<string | null>(null);
  const [live, setLive] = useState<string | null>(null);
  const [turns, setTurns] = useState<Turn[]>([]);

  useEffect(() => () => client.current?.hangup(), []);

  // The stored transcript, while the call is live and once more after it ends.
  const poll = async () => {
    if (!callId) return;
    try {
      const t = await must(api.GET('/api/v1/calls/{id}/transcript', { params: { path: { id: callId } } }));
      setTurns(t.items);
    } catch {
      // The next poll tries again; the call page has the full record.
    }
  };
  useInterval(() => void poll(), 1500, state === 'live');
  const ended = state === 'ended';
  const pollOnce = useRef(poll);
  pollOnce.current = poll;
  useEffect(() => {
    if (ended) void pollOnce.current();
  }, [ended]);

  async function talk() {
    setError(null);
    setTurns([]);
    setLive(null);
    setAgentState(null);
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
        onMessage: (msg) => {
          if (msg.type === 'state' && typeof msg.state === 'string') setAgentState(msg.state);
          const said = describe(msg);
          if (said) setLive(said);
        },
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
                    {state === 'live' && <Badge variant="light">{speaking ? 'agent speaking' : (agentState ?? 'listening')}</Badge>}
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
                {live && (
                  <Text size="sm" c="dimmed" aria-live="polite">
                    {live}
                  </Text>
                )}
              </Stack>
            </Paper>
            {(turns.length > 0 || callId) && (
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
                  {turns.map((t) => (
                    <div key={t.seq}>
                      <Group gap={6}>
                        <Text size="xs" fw={700} tt="capitalize">
                          {t.speaker}
                        </Text>
                        {t.interrupted && (
                          <Badge size="xs" color="orange" variant="light">
                            interrupted
                          </Badge>
                        )}
                        {t.metrics.voice_to_voice !== undefined && (
                          <Badge size="xs" color="gray">
                            {Math.round(t.metrics.voice_to_voice)} ms
                          </Badge>
                        )}
                      </Group>
                      <Text size="sm" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>
                        {t.text}
                      </Text>
                    </div>
                  ))}
                  {turns.length === 0 && (
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
