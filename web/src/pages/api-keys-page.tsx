// API keys (admins): make one (shown once), see when each was last used, revoke.
import { Button, Group, Stack, Table, Text, TextInput, Title, VisuallyHidden } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, must } from '../api/client';
import { fieldErrors } from '../api/errors';
import { Section } from '../components/section';
import { ShownOnce } from '../components/shown-once';
import { EmptyState, Guard, notifyError, notifyOk } from '../components/status';
import { formatDate } from '../lib/format';
import { useLoad } from '../lib/use-load';

export default function ApiKeysPage() {
  const keys = useLoad(() => must(api.GET('/api/v1/api-keys')), []);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [secret, setSecret] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function create(e: FormEvent) {
    e.preventDefault();
    if (!name.trim()) return setError('Name the key after what will use it');
    setBusy(true);
    setError(undefined);
    try {
      const k = await must(api.POST('/api/v1/api-keys', { body: { name: name.trim() } }));
      setSecret(k.key);
      setName('');
      void keys.reload();
    } catch (err) {
      setError(fieldErrors(err).name);
      notifyError(err, 'Key not created');
    } finally {
      setBusy(false);
    }
  }

  async function revoke(id: string, label: string) {
    if (!window.confirm(`Revoke “${label}”? Anything using it stops working at once.`)) return;
    try {
      await must(api.DELETE('/api/v1/api-keys/{id}', { params: { path: { id } } }));
      notifyOk('Revoked');
      void keys.reload();
    } catch (err) {
      notifyError(err, 'Not revoked');
    }
  }

  return (
    <Stack maw={960}>
      <Title order={2}>API keys</Title>
      <Section title="New key" description="For your servers: Authorization: Bearer vak_… on every /api/v1 request of this account.">
        <form onSubmit={(e) => void create(e)}>
          <Group align="flex-start">
            <TextInput
              aria-label="Key name"
              placeholder="booking-server"
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              error={error}
              maxLength={100}
              style={{ flex: 1 }}
            />
            <Button type="submit" loading={busy}>
              Create key
            </Button>
          </Group>
        </form>
      </Section>
      <Guard state={keys}>
        {(list) =>
          list.items.length === 0 ? (
            <EmptyState title="No API keys">Create one above to call the API from your own servers.</EmptyState>
          ) : (
            <Table.ScrollContainer minWidth={560}>
              <Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Name</Table.Th>
                    <Table.Th>Key</Table.Th>
                    <Table.Th>Last used</Table.Th>
                    <Table.Th>Created</Table.Th>
                    <Table.Th>
                      <VisuallyHidden>Actions</VisuallyHidden>
                    </Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.items.map((k) => (
                    <Table.Tr key={k.id}>
                      <Table.Td>{k.name}</Table.Td>
                      <Table.Td>
                        <Text ff="monospace" size="sm">
                          {k.prefix}…
                        </Text>
                      </Table.Td>
                      <Table.Td>{formatDate(k.last_used_at)}</Table.Td>
                      <Table.Td>{formatDate(k.created_at)}</Table.Td>
                      <Table.Td ta="right">
                        <Button size="xs" variant="subtle" color="red" onClick={() => void revoke(k.id, k.name)}>
                          Revoke
                        </Button>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          )
        }
      </Guard>
      <ShownOnce title="Your new API key" secret={secret} onClose={() => setSecret(null)} />
    </Stack>
  );
}
