// Calls and chat sessions, newest first, with filters and pages. Filters travel as query parameters; one the
// service does not know yet answers with its message (shown), never a blank page.
import { Badge, Button, Group, Pagination, Select, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api, must } from '../api/client';
import type { CallSummary } from '../api/types';
import { EmptyState, Guard } from '../components/status';
import { formatDate, formatDuration } from '../lib/format';
import { useInterval, useLoad } from '../lib/use-load';

const PAGE = 25;
const FILTERS = ['direction', 'status', 'from', 'to', 'number', 'q'] as const;
type Filter = (typeof FILTERS)[number];

const DIRECTIONS = ['inbound', 'outbound', 'web', 'chat'];
const STATUSES = ['queued', 'ringing', 'in_progress', 'completed', 'failed', 'busy', 'no_answer', 'canceled'];

export function StatusBadge({ status }: { status: string }) {
  const color = status === 'in_progress' ? 'red' : status === 'completed' ? 'green' : status === 'failed' ? 'orange' : 'gray';
  return (
    <Badge color={status === 'in_progress' ? 'red.8' : color} variant={status === 'in_progress' ? 'filled' : 'light'}>
      {status === 'in_progress' ? 'live' : status.replace('_', ' ')}
    </Badge>
  );
}

/** The query as sent: empty filters left out; dates as the start/end of the chosen days. */
export function callsQuery(filters: Partial<Record<Filter, string>>, page: number): Record<string, string | number> {
  const q: Record<string, string | number> = { limit: PAGE, offset: (page - 1) * PAGE };
  for (const k of FILTERS) {
    const v = filters[k]?.trim();
    if (!v) continue;
    if (k === 'from') q.from = new Date(`${v}T00:00:00`).toISOString();
    else if (k === 'to') q.to = new Date(`${v}T23:59:59.999`).toISOString();
    else q[k] = v;
  }
  return q;
}

export default function CallsPage() {
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const page = Math.max(1, Number(params.get('page')) || 1);
  const applied = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? ''])) as Record<Filter, string>;
  const [draft, setDraft] = useState(applied);
  const key = params.toString();
  const calls = useLoad(
    () => must(api.GET('/api/v1/calls', { params: { query: callsQuery(applied, page) as { limit: number; offset: number } } })),
    [key],
  );
  const live = (calls.data?.items ?? []).some((c) => c.status === 'in_progress');
  useInterval(() => void calls.reload(), 3000, live);

  const apply = (next: Record<Filter, string>, nextPage = 1) => {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (next[k]) p.set(k, next[k]);
    if (nextPage > 1) p.set('page', String(nextPage));
    setParams(p);
  };
  const set = (k: Filter) => (v: string | null) => setDraft({ ...draft, [k]: v ?? '' });
  const filtered = FILTERS.some((k) => applied[k]);

  return (
    <Stack maw={1200}>
      <Title order={2}>Calls</Title>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          apply(draft);
        }}
      >
        <SimpleGrid cols={{ base: 1, xs: 2, md: 3, lg: 6 }}>
          <Select
            label="Direction"
            data={DIRECTIONS}
            value={draft.direction || null}
            onChange={set('direction')}
            clearable
            placeholder="Any"
          />
          <Select
            label="Status"
            data={STATUSES.map((s) => ({ value: s, label: s === 'in_progress' ? 'live' : s.replace('_', ' ') }))}
            value={draft.status || null}
            onChange={set('status')}
            clearable
            placeholder="Any"
          />
          <TextInput label="From" type="date" value={draft.from} onChange={(e) => set('from')(e.currentTarget.value)} />
          <TextInput label="To" type="date" value={draft.to} onChange={(e) => set('to')(e.currentTarget.value)} />
          <TextInput label="Number" placeholder="+1415…" value={draft.number} onChange={(e) => set('number')(e.currentTarget.value)} />
          <TextInput label="Transcript contains" value={draft.q} onChange={(e) => set('q')(e.currentTarget.value)} maxLength={200} />
        </SimpleGrid>
        <Group mt="sm" gap="xs">
          <Button type="submit">Apply</Button>
          {filtered && (
            <Button
              variant="subtle"
              onClick={() => {
                const none = Object.fromEntries(FILTERS.map((k) => [k, ''])) as Record<Filter, string>;
                setDraft(none);
                apply(none);
              }}
            >
              Clear filters
            </Button>
          )}
        </Group>
      </form>
      <Guard state={calls}>
        {(list) =>
          list.items.length === 0 ? (
            filtered ? (
              <EmptyState title="No calls match these filters">Widen the dates or clear the filters.</EmptyState>
            ) : (
              <EmptyState title="No calls yet">
                Talk to your agent from the browser, connect a phone number (Phone numbers) or run <code>npm run simulate:call</code>: every
                call and chat appears here with its transcript.
              </EmptyState>
            )
          ) : (
            <Stack>
              <Table.ScrollContainer minWidth={760}>
                <Table highlightOnHover>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Started</Table.Th>
                      <Table.Th>Direction</Table.Th>
                      <Table.Th>Status</Table.Th>
                      <Table.Th>From</Table.Th>
                      <Table.Th>To</Table.Th>
                      <Table.Th>Duration</Table.Th>
                      <Table.Th>Voice to voice (p50)</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((c: CallSummary) => (
                      <Table.Tr key={c.id} style={{ cursor: 'pointer' }} onClick={() => navigate(`/calls/${c.id}`)}>
                        <Table.Td>
                          <Text component={Link} to={`/calls/${c.id}`} size="sm" c="indigo" onClick={(e) => e.stopPropagation()}>
                            {formatDate(c.started_at ?? c.created_at)}
                          </Text>
                        </Table.Td>
                        <Table.Td>{c.direction}</Table.Td>
                        <Table.Td>
                          <StatusBadge status={c.status} />
                        </Table.Td>
                        <Table.Td>{c.from_number ?? '—'}</Table.Td>
                        <Table.Td>{c.to_number ?? '—'}</Table.Td>
                        <Table.Td>{formatDuration(c.duration_ms)}</Table.Td>
                        <Table.Td>{c.metrics.voice_to_voice ? `${Math.round(c.metrics.voice_to_voice.p50)} ms` : '—'}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              <Group justify="space-between">
                <Text size="sm" c="dimmed">
                  {list.total} in all
                </Text>
                {list.total > PAGE && <Pagination total={Math.ceil(list.total / PAGE)} value={page} onChange={(p) => apply(applied, p)} />}
              </Group>
            </Stack>
          )
        }
      </Guard>
    </Stack>
  );
}
