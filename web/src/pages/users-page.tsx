// The account's users (admins): invite one with a first password, change roles, deactivate and reactivate.
import {
  Badge,
  Button,
  Group,
  PasswordInput,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
  VisuallyHidden,
} from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { api, must } from '../api/client';
import { fieldErrors } from '../api/errors';
import type { User } from '../api/types';
import { Section } from '../components/section';
import { Guard, notifyError, notifyOk } from '../components/status';
import { formatDate } from '../lib/format';
import { useLoad } from '../lib/use-load';
import { isValid, validateCredentials, type Errors } from '../lib/validate';
import { useSession } from '../session';

type Role = User['role'];

export default function UsersPage() {
  const { me } = useSession();
  const users = useLoad(() => must(api.GET('/api/v1/users', { params: { query: { limit: 200 } } })), []);
  const [form, setForm] = useState({ email: '', password: '', full_name: '', role: 'member' as Role });
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);

  async function add(e: FormEvent) {
    e.preventDefault();
    const found = validateCredentials({ ...form, tenant_name: 'x' }, 'signup');
    setErrors(found);
    if (!isValid(found)) return;
    setBusy(true);
    try {
      await must(
        api.POST('/api/v1/users', {
          body: {
            email: form.email.trim(),
            password: form.password,
            role: form.role,
            ...(form.full_name.trim() && { full_name: form.full_name.trim() }),
          },
        }),
      );
      notifyOk(`${form.email} can now log in`);
      setForm({ email: '', password: '', full_name: '', role: 'member' });
      void users.reload();
    } catch (err) {
      setErrors(fieldErrors(err));
      notifyError(err, 'User not added');
    } finally {
      setBusy(false);
    }
  }

  async function patch(u: User, body: { role?: Role; is_active?: boolean }) {
    try {
      await must(api.PATCH('/api/v1/users/{id}', { params: { path: { id: u.id } }, body }));
      void users.reload();
    } catch (err) {
      notifyError(err);
    }
  }

  return (
    <Stack maw={1000}>
      <Title order={2}>Users</Title>
      <Guard state={users}>
        {(list) => (
          <Table.ScrollContainer minWidth={640}>
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>User</Table.Th>
                  <Table.Th>Role</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Last login</Table.Th>
                  <Table.Th>
                    <VisuallyHidden>Actions</VisuallyHidden>
                  </Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.items.map((u) => {
                  const self = u.id === me?.user.id;
                  return (
                    <Table.Tr key={u.id}>
                      <Table.Td>
                        <Text size="sm">{u.full_name ?? u.email}</Text>
                        {u.full_name && (
                          <Text size="xs" c="dimmed">
                            {u.email}
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td>
                        <Select
                          aria-label={`Role of ${u.email}`}
                          size="xs"
                          w={110}
                          data={['admin', 'member']}
                          value={u.role}
                          allowDeselect={false}
                          disabled={self}
                          onChange={(r) => r && void patch(u, { role: r as Role })}
                        />
                      </Table.Td>
                      <Table.Td>{u.is_active ? <Badge color="green">active</Badge> : <Badge color="gray">deactivated</Badge>}</Table.Td>
                      <Table.Td>{formatDate(u.last_login_at)}</Table.Td>
                      <Table.Td ta="right">
                        {!self && (
                          <Button
                            size="xs"
                            variant="subtle"
                            color={u.is_active ? 'red' : 'green'}
                            onClick={() => void patch(u, { is_active: !u.is_active })}
                          >
                            {u.is_active ? 'Deactivate' : 'Reactivate'}
                          </Button>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  );
                })}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Guard>
      <Section title="Add a user" description="They log in with this email and password; members read everything, admins also change it.">
        <form onSubmit={(e) => void add(e)} noValidate>
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput
              label="Email"
              type="email"
              value={form.email}
              error={errors.email}
              onChange={(e) => setForm({ ...form, email: e.currentTarget.value })}
            />
            <TextInput
              label="Name"
              value={form.full_name}
              error={errors.full_name}
              onChange={(e) => setForm({ ...form, full_name: e.currentTarget.value })}
            />
            <PasswordInput
              label="First password"
              autoComplete="new-password"
              value={form.password}
              error={errors.password}
              onChange={(e) => setForm({ ...form, password: e.currentTarget.value })}
            />
            <Select
              label="Role"
              data={['member', 'admin']}
              value={form.role}
              allowDeselect={false}
              onChange={(r) => r && setForm({ ...form, role: r as Role })}
            />
          </SimpleGrid>
          <Group justify="flex-end" mt="sm">
            <Button type="submit" loading={busy}>
              Add user
            </Button>
          </Group>
        </form>
      </Section>
    </Stack>
  );
}
