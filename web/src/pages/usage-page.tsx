// Usage and cost over a period: totals, a chart per day or month, and the split per component and provider.
import '@mantine/charts/styles.css';
import { BarChart } from '@mantine/charts';
import { Group, Paper, SegmentedControl, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { api, must } from '../api/client';
import { EmptyState, Guard } from '../components/status';
import { formatUsd } from '../lib/format';
import { useLoad } from '../lib/use-load';

type GroupBy = 'day' | 'month';
const isoDay = (d: Date) => d.toISOString().slice(0, 10);
/** The API's `to` is exclusive: the day after the last day chosen. */
const dayAfter = (day: string) => isoDay(new Date(Date.parse(`${day}T00:00:00Z`) + 86_400_000));

export default function UsagePage() {
  const now = new Date();
  const [from, setFrom] = useState(isoDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))));
  const [to, setTo] = useState(isoDay(now));
  const [groupBy, setGroupBy] = useState<GroupBy>('day');
  const usage = useLoad(
    () => must(api.GET('/api/v1/usage', { params: { query: { from, to: dayAfter(to), group_by: groupBy } } })),
    [from, to, groupBy],
  );
  const providers = useLoad(
    () => must(api.GET('/api/v1/usage', { params: { query: { from, to: dayAfter(to), group_by: 'provider' } } })),
    [from, to],
  );

  return (
    <Stack maw={1100}>
      <Title order={2}>Usage</Title>
      <Group align="flex-end" wrap="wrap">
        <TextInput label="From" type="date" value={from} onChange={(e) => e.currentTarget.value && setFrom(e.currentTarget.value)} />
        <TextInput label="To" type="date" value={to} onChange={(e) => e.currentTarget.value && setTo(e.currentTarget.value)} />
        <SegmentedControl
          aria-label="Group by"
          value={groupBy}
          onChange={(g) => setGroupBy(g as GroupBy)}
          data={[
            { value: 'day', label: 'Per day' },
            { value: 'month', label: 'Per month' },
          ]}
        />
      </Group>
      <Guard state={usage}>
        {(u) => (
          <>
            <SimpleGrid cols={{ base: 2, sm: 4 }}>
              {(
                [
                  ['Minutes', u.totals.minutes.toFixed(1)],
                  ['Billed by the platform', formatUsd(u.totals.platform_usd)],
                  ['On your own keys', formatUsd(u.totals.tenant_usd)],
                  ['Total', formatUsd(u.totals.total_usd)],
                ] as const
              ).map(([k, v]) => (
                <Paper key={k} withBorder p="sm">
                  <Text size="xs" c="dimmed">
                    {k}
                  </Text>
                  <Text size="xl" fw={600}>
                    {v}
                  </Text>
                </Paper>
              ))}
            </SimpleGrid>
            {u.items.length === 0 ? (
              <EmptyState title="No usage in this period">Calls, chats and document indexing are counted here as they happen.</EmptyState>
            ) : (
              <Paper withBorder p="md">
                <Text size="sm" fw={500} mb="xs">
                  Minutes and cost per {groupBy}
                </Text>
                <BarChart
                  h={280}
                  data={u.items.map((i) => ({
                    key: i.key,
                    minutes: Math.round(i.minutes * 10) / 10,
                    cost: Math.round(i.cost.total_usd * 100) / 100,
                  }))}
                  dataKey="key"
                  withLegend
                  series={[
                    { name: 'minutes', color: 'indigo.6', label: 'Minutes' },
                    { name: 'cost', color: 'teal.6', label: 'Cost (USD)' },
                  ]}
                />
              </Paper>
            )}
          </>
        )}
      </Guard>
      <Guard state={providers}>
        {(p) =>
          p.items.length === 0 ? null : (
            <Table.ScrollContainer minWidth={520}>
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Component : provider</Table.Th>
                    <Table.Th ta="right">Platform</Table.Th>
                    <Table.Th ta="right">Your keys</Table.Th>
                    <Table.Th ta="right">Total</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {p.items.map((i) => (
                    <Table.Tr key={i.key}>
                      <Table.Td>{i.key}</Table.Td>
                      <Table.Td ta="right">{formatUsd(i.cost.platform_usd)}</Table.Td>
                      <Table.Td ta="right">{formatUsd(i.cost.tenant_usd)}</Table.Td>
                      <Table.Td ta="right">{formatUsd(i.cost.total_usd)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          )
        }
      </Guard>
    </Stack>
  );
}
