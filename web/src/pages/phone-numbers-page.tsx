// The tenant's phone numbers: add one (E.164), switch it on or off, remove it; and how to connect Twilio.
import { Alert, Badge, Button, Code, Group, Select, Stack, Switch, Table, Text, TextInput, Title, VisuallyHidden } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, must } from '../api/client';
import { fieldErrors } from '../api/errors';
import type { PhoneNumber } from '../api/types';
import { Section } from '../components/section';
import { EmptyState, Guard, notifyError, notifyOk } from '../components/status';
import { formatDate } from '../lib/format';
import { useLoad } from '../lib/use-load';
import { E164, type Errors } from '../lib/validate';
import { useSession } from '../session';

const MODES = { media_stream: 'Media stream', livekit: 'LiveKit (SIP)' } satisfies Record<NonNullable<PhoneNumber['mode']>, string>;

export default function PhoneNumbersPage() {
  const { isAdmin } = useSession();
  const numbers = useLoad(() => must(api.GET('/api/v1/phone-numbers', { params: { query: { limit: 200 } } })), []);
  const [form, setForm] = useState({ number: '', friendly_name: '', mode: '' });
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const webhook = `${window.location.origin}/api/v1/webhooks/twilio/voice`;

  async function add(e: FormEvent) {
    e.preventDefault();
    if (!E164.test(form.number)) return setErrors({ number: 'An E.164 number such as +14155550100' });
    setBusy(true);
    setErrors({});
    try {
      await must(
        api.POST('/api/v1/phone-numbers', {
          body: {
            number: form.number,
            ...(form.friendly_name.trim() && { friendly_name: form.friendly_name.trim() }),
            ...(form.mode && { mode: form.mode as keyof typeof MODES }),
          },
        }),
      );
      setForm({ number: '', friendly_name: '', mode: '' });
      notifyOk('Number added');
      void numbers.reload();
    } catch (err) {
      setErrors(fieldErrors(err));
      notifyError(err, 'Number not added');
    } finally {
      setBusy(false);
    }
  }

  async function patch(n: PhoneNumber, is_active: boolean) {
    try {
      await must(api.PATCH('/api/v1/phone-numbers/{id}', { params: { path: { id: n.id } }, body: { is_active } }));
      void numbers.reload();
    } catch (err) {
      notifyError(err);
    }
  }

  async function remove(n: PhoneNumber) {
    if (!window.confirm(`Remove ${n.number}? Calls to it will no longer reach the agent.`)) return;
    try {
      await must(api.DELETE('/api/v1/phone-numbers/{id}', { params: { path: { id: n.id } } }));
      void numbers.reload();
    } catch (err) {
      notifyError(err, 'Not removed');
    }
  }

  return (
    <Stack maw={1000}>
      <Title order={2}>Phone numbers</Title>
      <Guard state={numbers}>
        {(list) =>
          list.items.length === 0 ? (
            <EmptyState title="No phone number yet">
              Buy a number in your Twilio console, set its “A call comes in” webhook to <Code>{webhook}</Code> (HTTP POST), give the service
              your Twilio account SID and auth token (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL), then add the number below.
              Until then, talk to your agent from the browser.
            </EmptyState>
          ) : (
            <Table.ScrollContainer minWidth={640}>
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Number</Table.Th>
                    <Table.Th>Name</Table.Th>
                    <Table.Th>Mode</Table.Th>
                    <Table.Th>Active</Table.Th>
                    <Table.Th>Added</Table.Th>
                    {isAdmin && (
                      <Table.Th>
                        <VisuallyHidden>Actions</VisuallyHidden>
                      </Table.Th>
                    )}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.items.map((n) => (
                    <Table.Tr key={n.id}>
                      <Table.Td>
                        <Text ff="monospace">{n.number}</Text>
                      </Table.Td>
                      <Table.Td>{n.friendly_name ?? '—'}</Table.Td>
                      <Table.Td>{n.mode ? MODES[n.mode] : <Badge variant="light">account default</Badge>}</Table.Td>
                      <Table.Td>
                        <Switch
                          aria-label={`${n.number} active`}
                          checked={n.is_active}
                          disabled={!isAdmin}
                          onChange={(e) => void patch(n, e.currentTarget.checked)}
                        />
                      </Table.Td>
                      <Table.Td>{formatDate(n.created_at)}</Table.Td>
                      {isAdmin && (
                        <Table.Td ta="right">
                          <Button size="xs" variant="subtle" color="red" onClick={() => void remove(n)}>
                            Remove
                          </Button>
                        </Table.Td>
                      )}
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          )
        }
      </Guard>
      {isAdmin ? (
        <Section title="Add a number" description={`Calls to it reach your agent once Twilio sends them to ${webhook}.`}>
          <form onSubmit={(e) => void add(e)}>
            <Group align="flex-start" wrap="wrap">
              <TextInput
                label="Number"
                placeholder="+14155550100"
                value={form.number}
                error={errors.number}
                onChange={(e) => setForm({ ...form, number: e.currentTarget.value.trim() })}
              />
              <TextInput
                label="Name"
                placeholder="Front desk"
                value={form.friendly_name}
                error={errors.friendly_name}
                onChange={(e) => setForm({ ...form, friendly_name: e.currentTarget.value })}
                maxLength={100}
              />
              <Select
                label="Mode"
                placeholder="Account default"
                clearable
                data={Object.entries(MODES).map(([value, label]) => ({ value, label }))}
                value={form.mode || null}
                onChange={(m) => setForm({ ...form, mode: m ?? '' })}
              />
              <Button type="submit" loading={busy} mt={25}>
                Add
              </Button>
            </Group>
          </form>
        </Section>
      ) : (
        <Alert color="gray">An admin of your account can add numbers.</Alert>
      )}
    </Stack>
  );
}
