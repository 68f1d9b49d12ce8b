// One call: its facts, the recording in a player tied to the transcript (click a turn to hear it; the turn being
// heard is highlighted), each agent turn's latency waterfall, and the events. A live call refreshes itself and can
// be hung up (or, a phone call, transferred).
import '@mantine/charts/styles.css';
import { BarChart } from '@mantine/charts';
import {
  Alert,
  Anchor,
  Badge,
  Button,
  Code,
  Group,
  Paper,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Timeline,
  Title,
  UnstyledButton,
} from '@mantine/core';
import { useMemo, useRef, useState } from 'react';
import { Link, useParams } from 'react-router';
import { api, must } from '../api/client';
import { ApiError } from '../api/errors';
import { type CallDetail, type CallEvent, citationLabel, type Turn } from '../api/types';
import { Section } from '../components/section';
import { ErrorAlert, Guard, Loading, notifyError, notifyOk } from '../components/status';
import { formatClock, formatDate, formatDuration, formatUsd } from '../lib/format';
import { useInterval, useLoad } from '../lib/use-load';
import { waterfall, waterfallSpan } from '../lib/waterfall';
import { StatusBadge } from './calls-page';

/** The turn heard at `ms` into the recording: the last one started by then and not yet over. */
export function turnAt(turns: Turn[], ms: number): number | null {
  let found: number | null = null;
  for (const t of turns) {
    if (t.start_ms === null || t.start_ms > ms) continue;
    if (t.end_ms !== null && t.end_ms < ms) continue;
    found = t.seq;
  }
  return found;
}

export default function CallPage() {
  const { id = '' } = useParams();
  const path = { params: { path: { id } } };
  const call = useLoad(() => must(api.GET('/api/v1/calls/{id}', path)), [id]);
  const transcript = useLoad(() => must(api.GET('/api/v1/calls/{id}/transcript', path)), [id]);
  const events = useLoad(() => must(api.GET('/api/v1/calls/{id}/events', path)), [id]);
  const live = call.data?.status === 'in_progress';
  useInterval(
    () => {
      void call.reload();
      void transcript.reload();
      void events.reload();
    },
    2000,
    live,
  );

  if (call.error instanceof ApiError && call.error.status === 404) {
    return (
      <Stack>
        <ErrorAlert error={call.error} />
        <Anchor component={Link} to="/calls">
          Back to the calls
        </Anchor>
      </Stack>
    );
  }

  return (
    <Stack maw={1200}>
      <Anchor component={Link} to="/calls" size="sm">
        ← Calls
      </Anchor>
      <Guard state={call}>
        {(c) => (
          <>
            <Header call={c} onChanged={() => void call.reload()} />
            <Guard state={transcript}>{(t) => <Conversation call={c} turns={t.items} />}</Guard>
            <Section title="Events">
              <Guard state={events}>{(e) => <Events items={e.items} />}</Guard>
            </Section>
          </>
        )}
      </Guard>
    </Stack>
  );
}

function Header({ call, onChanged }: { call: CallDetail; onChanged: () => void }) {
  const [to, setTo] = useState('');
  const [busy, setBusy] = useState<string | null>(null);
  const live = call.status === 'in_progress';
  const phone = call.direction === 'inbound' || call.direction === 'outbound';

  async function act(kind: 'hangup' | 'transfer') {
    setBusy(kind);
    try {
      if (kind === 'hangup') await must(api.POST('/api/v1/calls/{id}/hangup', { params: { path: { id: call.id } } }));
      else await must(api.POST('/api/v1/calls/{id}/transfer', { params: { path: { id: call.id } }, body: { to } }));
      notifyOk(kind === 'hangup' ? 'Hanging up' : `Transferring to ${to}`);
      onChanged();
    } catch (err) {
      notifyError(err);
    } finally {
      setBusy(null);
    }
  }

  const facts: [string, string][] = [
    ['Direction', call.direction],
    ['From', call.from_number ?? '—'],
    ['To', call.to_number ?? '—'],
    ['Started', formatDate(call.started_at ?? call.created_at)],
    ['Ended', formatDate(call.ended_at)],
    ['Duration', formatDuration(call.duration_ms)],
    ['Cost', formatUsd(call.cost.total_usd)],
  ];
  return (
    <Paper withBorder p="md">
      <Group justify="space-between" align="flex-start" wrap="wrap">
        <Group gap="sm">
          <Title order={2}>Call</Title>
          <StatusBadge status={call.status} />
        </Group>
        {live && (
          <Group gap="xs" align="flex-end" wrap="wrap">
            {phone && (
              <>
                <TextInput
                  size="xs"
                  aria-label="Transfer to"
                  placeholder="+14155550100"
                  value={to}
                  onChange={(e) => setTo(e.currentTarget.value.trim())}
                />
                <Button size="xs" variant="light" disabled={!to} loading={busy === 'transfer'} onClick={() => void act('transfer')}>
                  Transfer
                </Button>
              </>
            )}
            <Button size="xs" color="red" loading={busy === 'hangup'} onClick={() => void act('hangup')}>
              Hang up
            </Button>
          </Group>
        )}
      </Group>
      <SimpleGrid cols={{ base: 2, sm: 4, lg: 7 }} mt="sm">
        {facts.map(([k, v]) => (
          <div key={k}>
            <Text size="xs" c="dimmed">
              {k}
            </Text>
            <Text size="sm">{v}</Text>
          </div>
        ))}
      </SimpleGrid>
      {call.analysis?.result && (
        <Alert mt="sm" color="indigo" title={`Summary${call.analysis.result.outcome ? ` · ${call.analysis.result.outcome}` : ''}`}>
          <Text size="sm" style={{ whiteSpace: 'pre-wrap' }}>
            {call.analysis.result.summary}
          </Text>
        </Alert>
      )}
    </Paper>
  );
}

function Conversation({ call, turns }: { call: CallDetail; turns: Turn[] }) {
  const audio = useRef<HTMLAudioElement>(null);
  const [heard, setHeard] = useState<number | null>(null);
  const agentTurns = turns.filter((t) => t.speaker === 'agent' && Object.keys(t.metrics).length > 0);
  const [chosen, setChosen] = useState<number | null>(null);
  const shown = agentTurns.find((t) => t.seq === chosen) ?? agentTurns[0];

  function seek(t: Turn) {
    if (t.speaker === 'agent' && Object.keys(t.metrics).length) setChosen(t.seq);
    const el = audio.current;
    if (!el || t.start_ms === null) return;
    el.currentTime = t.start_ms / 1000;
    void el.play().catch(() => undefined);
  }

  return (
    <>
      <Recording call={call} audioRef={audio} onTime={(ms) => setHeard(turnAt(turns, ms))} />
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <Section title="Transcript">
          {turns.length === 0 ? (
            <Text c="dimmed" size="sm">
              Nothing was said yet.
            </Text>
          ) : (
            <Stack gap={4} aria-live={call.status === 'in_progress' ? 'polite' : undefined}>
              {turns.map((t) => (
                <UnstyledButton
                  key={t.seq}
                  onClick={() => seek(t)}
                  p="xs"
                  aria-current={heard === t.seq ? 'true' : undefined}
                  style={{
                    borderRadius: 6,
                    background:
                      heard === t.seq
                        ? 'var(--mantine-color-yellow-light)'
                        : t.speaker === 'agent'
                          ? 'var(--mantine-color-indigo-light)'
                          : undefined,
                    outline: shown?.seq === t.seq ? '1px solid var(--mantine-color-indigo-outline)' : undefined,
                  }}
                >
                  <Group gap={6} mb={2}>
                    <Text size="xs" fw={700} tt="capitalize">
                      {t.speaker}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {t.start_ms !== null ? formatClock(t.start_ms) : ''}
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
                    {t.text || '(nothing heard)'}
                  </Text>
                  {t.citations.length > 0 && (
                    <Text size="xs" c="dimmed">
                      Sources: {t.citations.map(citationLabel).join('; ')}
                    </Text>
                  )}
                </UnstyledButton>
              ))}
            </Stack>
          )}
        </Section>
        <Section
          title="Latency"
          description="Per agent turn, from the end of the caller’s speech. Click an agent turn to see its waterfall."
        >
          {shown ? (
            <Waterfall turn={shown} />
          ) : (
            <Text c="dimmed" size="sm">
              No measured agent turn yet.
            </Text>
          )}
        </Section>
      </SimpleGrid>
    </>
  );
}

function Recording({
  call,
  audioRef,
  onTime,
}: {
  call: CallDetail;
  audioRef: React.RefObject<HTMLAudioElement | null>;
  onTime: (ms: number) => void;
}) {
  const ended = call.status !== 'in_progress' && call.direction !== 'chat';
  const rec = useLoad(
    () => (ended ? must(api.GET('/api/v1/calls/{id}/recording', { params: { path: { id: call.id } } })) : Promise.resolve(null)),
    [call.id, ended],
  );
  if (!ended) return null;
  if (rec.error !== undefined) {
    const missing = rec.error instanceof ApiError && rec.error.status === 404;
    return missing ? (
      <Alert color="gray">This call has no recording (recording off, or no audio was carried).</Alert>
    ) : (
      <ErrorAlert error={rec.error} onRetry={() => void rec.reload()} />
    );
  }
  if (!rec.data) return <Loading label="Loading the recording" />;
  return (
    <Paper withBorder p="sm">
      <Text size="xs" c="dimmed" mb={4}>
        Recording (caller left, agent right)
      </Text>
      <audio
        ref={audioRef}
        controls
        preload="metadata"
        src={rec.data.url}
        style={{ width: '100%' }}
        onTimeUpdate={(e) => onTime(e.currentTarget.currentTime * 1000)}
        onError={() => void rec.reload()}
      />
    </Paper>
  );
}

function Waterfall({ turn }: { turn: Turn }) {
  const bars = useMemo(() => waterfall(turn.metrics), [turn.metrics]);
  const span = waterfallSpan(bars);
  if (bars.length === 0) return <Text size="sm">No stage was measured in this turn.</Text>;
  const data = bars.map((b) => ({ stage: b.label, offset: b.startMs, duration: b.durationMs }));
  return (
    <Stack gap="xs">
      <Text size="sm" c="dimmed" lineClamp={1}>
        Turn {turn.seq}: {turn.text ? `“${turn.text}”` : turn.interrupted ? '(interrupted before any word was heard)' : '(nothing said)'}
      </Text>
      <div role="img" aria-label={`Latency waterfall: ${bars.map((b) => `${b.label} ${b.durationMs} ms`).join(', ')}`}>
        <BarChart
          h={40 + bars.length * 36}
          data={data}
          dataKey="stage"
          type="stacked"
          orientation="vertical"
          withTooltip={false}
          yAxisProps={{ width: 110 }}
          xAxisProps={{ domain: [0, Math.ceil(span / 100) * 100] }}
          series={[
            { name: 'offset', color: 'transparent', label: 'waiting' },
            { name: 'duration', color: 'indigo.6', label: 'duration' },
          ]}
        />
      </div>
      <Table fz="xs" withRowBorders={false}>
        <Table.Tbody>
          {bars.map((b) => (
            <Table.Tr key={b.stage}>
              <Table.Td>{b.label}</Table.Td>
              <Table.Td>
                {b.startMs} → {b.startMs + b.durationMs} ms
              </Table.Td>
              <Table.Td ta="right">{b.durationMs} ms</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

function Events({ items }: { items: CallEvent[] }) {
  if (items.length === 0)
    return (
      <Text size="sm" c="dimmed">
        No events.
      </Text>
    );
  return (
    <Timeline bulletSize={12} lineWidth={2}>
      {items.map((e, i) => (
        <Timeline.Item key={i} title={e.type}>
          <Text size="xs" c="dimmed">
            {formatDate(e.occurred_at)}
          </Text>
          {Object.keys(e.data ?? {}).length > 0 && (
            <Code block fz="xs" mt={4} style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>
              {JSON.stringify(e.data, null, 1)}
            </Code>
          )}
        </Timeline.Item>
      ))}
    </Timeline>
  );
}
