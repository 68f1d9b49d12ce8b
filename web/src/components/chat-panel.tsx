// Text chat with the agent on the chat websocket: replies stream in as they are written, with their sources.
import { Alert, Button, Group, Paper, Stack, Text, TextInput } from '@mantine/core';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { messageOf } from '../api/errors';
import { type Citation, citationLabel } from '../api/types';
import { openChat, type ChatEvent } from '../lib/chat-socket';

interface Line {
  who: 'you' | 'agent';
  text: string;
  citations?: Citation[];
}

export function ChatPanel() {
  const chat = useRef<{ send(text: string): void; close(): void } | null>(null);
  const [lines, setLines] = useState<Line[]>([]);
  const [draft, setDraft] = useState('');
  const [writing, setWriting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => () => chat.current?.close(), []);

  const onEvent = (e: ChatEvent) => {
    if (e.type === 'session' && e.greeting) setLines((l) => [...l, { who: 'agent', text: e.greeting! }]);
    else if (e.type === 'delta')
      setLines((l) => {
        const last = l[l.length - 1];
        return last?.who === 'agent' && !last.citations
          ? [...l.slice(0, -1), { ...last, text: last.text + e.text }]
          : [...l, { who: 'agent', text: e.text }];
      });
    else if (e.type === 'reply') {
      setWriting(false);
      setLines((l) => {
        const last = l[l.length - 1];
        const done = { who: 'agent' as const, text: e.reply, citations: e.citations };
        return last?.who === 'agent' && !last.citations ? [...l.slice(0, -1), done] : [...l, done];
      });
    } else if (e.type === 'error') {
      setWriting(false);
      setError(e.error.message);
    } else if (e.type === 'closed') {
      chat.current = null;
      setWriting(false);
    }
  };

  async function send(ev: FormEvent) {
    ev.preventDefault();
    const text = draft.trim();
    if (!text) return;
    setError(null);
    try {
      chat.current ??= await openChat(onEvent);
      setLines((l) => [...l, { who: 'you', text }]);
      setDraft('');
      setWriting(true);
      chat.current.send(text);
    } catch (err) {
      setError(messageOf(err));
    }
  }

  return (
    <Paper withBorder p="md">
      <Stack>
        <Stack gap={6} aria-live="polite">
          {lines.length === 0 && (
            <Text size="sm" c="dimmed">
              Type a question as a customer would. The agent answers from your documents.
            </Text>
          )}
          {lines.map((l, i) => (
            <div key={i}>
              <Text size="xs" fw={700}>
                {l.who === 'you' ? 'You' : 'Agent'}
              </Text>
              <Text size="sm" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>
                {l.text}
              </Text>
              {l.citations && l.citations.length > 0 && (
                <Text size="xs" c="dimmed">
                  Sources: {l.citations.map(citationLabel).join('; ')}
                </Text>
              )}
            </div>
          ))}
        </Stack>
        {error && (
          <Alert color="red" role="alert">
            {error}
          </Alert>
        )}
        <form onSubmit={(e) => void send(e)}>
          <Group align="flex-end">
            <TextInput
              aria-label="Message"
              placeholder="Where can I park?"
              value={draft}
              onChange={(e) => setDraft(e.currentTarget.value)}
              style={{ flex: 1 }}
              maxLength={4000}
            />
            <Button type="submit" loading={writing}>
              Send
            </Button>
          </Group>
        </form>
      </Stack>
    </Paper>
  );
}
