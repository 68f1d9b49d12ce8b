// Webhook endpoints: add one (its signing secret shown once), switch it on or off, send a test, rotate the secret,
// delete it; and each endpoint's delivery log with replays.
import {
  Badge,
  Button,
  Checkbox,
  Code,
  Group,
  Paper,
  SimpleGrid,
  Stack,
  Switch,
  Table,
  Text,
  TextInput,
  Title,
  VisuallyHidden,
} from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, must } from '../api/client';
import { fieldErrors } from '../api/errors';
import type { BodyOf, Webhook } from '../api/types';
import { Section } from '../components/section';
import { ShownOnce } from '../components/shown-once';
import { EmptyState, Guard, notifyError, notifyOk } from '../components/status';
import { formatDate } from '../lib/format';
import { useLoad } from '../lib/use-load';
import type { Errors } from '../lib/validate';
import { useSession } from '../session';

type EventName = BodyOf<'/api/v1/webhooks', 'post'>['events'][number];
const EVENTS = {
  '*': 'Everything (but transcript turns)',
  'call.started': 'Call started',
  'call.ended': 'Call ended',
  'call.analyzed': 'Call analysed',
  'transcript.turn': 'Each transcript turn',
  'transfer.started': 'Transfer started',
  'transfer.completed': 'Transfer completed',
  'transfer.failed': 'Transfer failed',
  'recording.ready': 'Recording ready',
  'document.ready': 'Document ready',
  'document.failed': 'Document failed',
  'usage.limit_reached': 'Usage limit reached',
} satisfies Record<EventName, string>;

export default function WebhooksPage() {
  const { isAdmin } = useSession();
  const hooks = useLoad(() => must(api.GET('/api/v1/webhooks')), []);
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  async function run(action: () => Promise<unknown>, ok: string) {
    try {
      await action();
      notifyOk(ok);
      void hooks.reload();
    } catch (err) {
      notifyError(err);
    }
  }
  const path = (id: string) => ({ params: { path: { id } } });

  return (
    <Stack maw={1100}>
      <Title order={2}>Webhooks</Title>
      <Guard state={hooks}>
        {(list) =>
          list.items.length === 0 ? (
            <EmptyState title="No webhook endpoints">
              Add your server’s URL below to be told when calls start and end, recordings are ready or documents are indexed. Each request
              is signed (Standard Webhooks) with the endpoint’s secret.
            </EmptyState>
          ) : (
            <Stack>
              {list.items.map((h: Webhook) => (
                <Paper key={h.id} withBorder p="sm">
                  <Group justify="space-between" wrap="wrap" align="flex-start">
                    <div style={{ minWidth: 0, flex: '1 1 320px' }}>
                      <Text fw={500} style={{ wordBreak: 'break-all' }}>
                        {h.url}
                      </Text>
                      {h.description && (
                        <Text size="xs" c="dimmed">
                          {h.description}
                        </Text>
                      )}
                      <Group gap={4} mt={4}>
                        {h.events.map((e) => (
                          <Badge key={e} size="xs" variant="light">
                            {e}
                          </Badge>
                        ))}
                        {h.failing_since && (
                          <Badge size="xs" color="orange">
                            failing since {formatDate(h.failing_since)}
                          </Badge>
                        )}
                        {h.disabled_reason && (
                          <Badge size="xs" color="red">
                            {h.disabled_reason}
                          </Badge>
                        )}
                      </Group>
                    </div>
                    <Group gap={4} wrap="wrap">
                      <Switch
                        label="Enabled"
                        checked={h.enabled}
                        disabled={!isAdmin}
                        onChange={(e) => {
                          const enabled = e.currentTarget.checked;
                          void run(
                            () => must(api.PATCH('/api/v1/webhooks/{id}', { ...path(h.id), body: { enabled } })),
                            enabled ? 'Enabled' : 'Disabled',
                          );
                        }}
                      />
                      <Button size="xs" variant="light" onClick={() => setOpen(open === h.id ? null : h.id)}>
                        {open === h.id ? 'Hide deliveries' : 'Deliveries'}
                      </Button>
                      {isAdmin && (
                        <>
                          <Button
                            size="xs"
                            variant="light"
                            onClick={() => void run(() => must(api.POST('/api/v1/webhooks/{id}/test', path(h.id))), 'Test event sent')}
                          >
                            Send test
                          </Button>
                          <Button
                            size="xs"
                            variant="subtle"
                            onClick={() =>
                              void run(
                                async () => setSecret((await must(api.POST('/api/v1/webhooks/{id}/rotate-secret', path(h.id)))).secret),
                                'Secret rotated',
                              )
                            }
                          >
                            Rotate secret
                          </Button>
                          <Button
                            size="xs"
                            variant="subtle"
                            color="red"
                            onClick={() =>
                              window.confirm(`Delete the endpoint ${h.url}?`) &&
                              void run(() => must(api.DELETE('/api/v1/webhooks/{id}', path(h.id))), 'Deleted')
                            }
                          >
                            Delete
                          </Button>
                        </>
                      )}
                    </Group>
                  </Group>
                  {open === h.id && <Deliveries id={h.id} canReplay={isAdmin} />}
                </Paper>
              ))}
            </Stack>
          )
        }
      </Guard>
      {isAdmin && <NewWebhook onCreated={(s) => (setSecret(s), void hooks.reload())} />}
      <ShownOnce title="The endpoint’s signing secret" secret={secret} onClose={() => setSecret(null)} />
    </Stack>
  );
}

function NewWebhook({ onCreated }: { onCreated: (secret: string) => void }) {
  const [url, setUrl] = useState('https://');
  const [description, setDescription] = useState('');
  const [events, setEvents] = useState<EventName[]>(['*']);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found: Errors = {};
    if (!/^https?:\/\/[^/\s]+/.test(url)) found.url = 'An http:// or https:// URL';
    if (events.length === 0) found.events = 'Choose at least one event';
    setErrors(found);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      const h = await must(
        api.POST('/api/v1/webhooks', { body: { url, events, ...(description.trim() && { description: description.trim() }) } }),
      );
      onCreated(h.secret);
      setUrl('https://');
      setDescription('');
    } catch (err) {
      setErrors(fieldErrors(err));
      notifyError(err, 'Endpoint not added');
    } finally {
      setBusy(false);
    }
  }

  return (
    <Section title="Add an endpoint">
      <form onSubmit={(e) => void submit(e)} noValidate>
        <Stack gap="sm">
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label="URL" value={url} error={errors.url} onChange={(e) => setUrl(e.currentTarget.value.trim())} maxLength={2000} />
            <TextInput label="Description" value={description} onChange={(e) => setDescription(e.currentTarget.value)} maxLength={500} />
          </SimpleGrid>
          <Checkbox.Group label="Events" value={events} onChange={(v) => setEvents(v as EventName[])} error={errors.events}>
            <SimpleGrid cols={{ base: 1, xs: 2, md: 3 }} mt={6}>
              {Object.entries(EVENTS).map(([value, label]) => (
                <Checkbox key={value} value={value} label={label} />
              ))}
            </SimpleGrid>
          </Checkbox.Group>
          <Group justify="flex-end">
            <Button type="submit" loading={busy}>
              Add endpoint
            </Button>
          </Group>
        </Stack>
      </form>
    </Section>
  );
}

function Deliveries({ id, canReplay }: { id: string; canReplay: boolean }) {
  const deliveries = useLoad(
    () => must(api.GET('/api/v1/webhooks/{id}/deliveries', { params: { path: { id }, query: { limit: 50 } } })),
    [id],
  );

  async function replay(deliveryId: string) {
    try {
      await must(api.POST('/api/v1/webhooks/deliveries/{id}/replay', { params: { path: { id: deliveryId } } }));
      notifyOk('Queued again');
      void deliveries.reload();
    } catch (err) {
      notifyError(err, 'Not replayed');
    }
  }

  return (
    <Stack mt="sm">
      <Guard state={deliveries}>
        {(list) =>
          list.items.length === 0 ? (
            <Text size="sm" c="dimmed">
              Nothing sent yet: press “Send test” to check your endpoint.
            </Text>
          ) : (
            <Table.ScrollContainer minWidth={640}>
              <Table fz="sm">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Event</Table.Th>
                    <Table.Th>Status</Table.Th>
                    <Table.Th>Attempts</Table.Th>
                    <Table.Th>Last answer</Table.Th>
                    <Table.Th>When</Table.Th>
                    <Table.Th>
                      <VisuallyHidden>Actions</VisuallyHidden>
                    </Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.items.map((d) => (
                    <Table.Tr key={d.id}>
                      <Table.Td>
                        <Code>{d.event_type}</Code>
                      </Table.Td>
                      <Table.Td>
                        <Badge color={d.status === 'delivered' ? 'green' : d.status === 'failed' ? 'red' : 'blue'} variant="light">
                          {d.status}
                        </Badge>
                      </Table.Td>
                      <Table.Td>{d.attempts}</Table.Td>
                      <Table.Td>
                        {d.last_status_code ?? '—'}
                        {d.attempt_log[0]?.error && (
                          <Text size="xs" c="red">
                            {d.attempt_log[0].error}
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td>{formatDate(d.event_created_at)}</Table.Td>
                      <Table.Td ta="right">
                        {canReplay && d.status !== 'pending' && (
                          <Button size="xs" variant="subtle" onClick={() => void replay(d.id)}>
                            Replay
                          </Button>
                        )}
                      </Table.Td>
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
