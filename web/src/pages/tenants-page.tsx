// Every tenant (platform admins): counts, suspend with a reason, reactivate.
import { Badge, Button, Pagination, Stack, Table, Text, Title, VisuallyHidden } from '@mantine/core';
import { useState } from 'react';
import { api, must } from '../api/client';
import type { TenantAdminView } from '../api/types';
import { Guard, notifyError, notifyOk } from '../components/status';
import { formatDate } from '../lib/format';
import { useLoad } from '../lib/use-load';
import { useSession } from '../session';

const PAGE = 50;

export default function TenantsPage() {
  const { me } = useSession();
  const [page, setPage] = useState(1);
  const tenants = useLoad(
    () => must(api.GET('/api/v1/admin/tenants', { params: { query: { limit: PAGE, offset: (page - 1) * PAGE } } })),
    [page],
  );

  async function toggle(t: TenantAdminView) {
    try {
      if (t.status === 'active') {
        const reason = window.prompt(`Suspend “${t.name}”? Its users, keys and calls are refused. Reason (optional):`);
        if (reason === null) return;
        await must(
          api.POST('/api/v1/admin/tenants/{id}/suspend', {
            params: { path: { id: t.id } },
            body: reason.trim() ? { reason: reason.trim().slice(0, 500) } : {},
          }),
        );
        notifyOk(`${t.name} suspended`);
      } else {
        await must(api.POST('/api/v1/admin/tenants/{id}/reactivate', { params: { path: { id: t.id } } }));
        notifyOk(`${t.name} reactivated`);
      }
      void tenants.reload();
    } catch (err) {
      notifyError(err);
    }
  }

  return (
    <Stack maw={1200}>
      <Title order={2}>Tenants</Title>
      <Guard state={tenants}>
        {(list) => (
          <Stack>
            <Table.ScrollContainer minWidth={800}>
              <Table striped>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Tenant</Table.Th>
                    <Table.Th>Status</Table.Th>
                    <Table.Th>Users</Table.Th>
                    <Table.Th>Calls</Table.Th>
                    <Table.Th>Documents</Table.Th>
                    <Table.Th>Numbers</Table.Th>
                    <Table.Th>Created</Table.Th>
                    <Table.Th>
                      <VisuallyHidden>Actions</VisuallyHidden>
                    </Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.items.map((t) => (
                    <Table.Tr key={t.id}>
                      <Table.Td>
                        <Text size="sm" style={{ wordBreak: 'break-word' }}>
                          {t.name}
                        </Text>
                      </Table.Td>
                      <Table.Td>
                        {t.status === 'active' ? <Badge color="green">active</Badge> : <Badge color="red">suspended</Badge>}
                        {t.suspended_reason && (
                          <Text size="xs" c="dimmed">
                            {t.suspended_reason}
                          </Text>
                        )}
                      </Table.Td>
                      <Table.Td>{t.counts.users}</Table.Td>
                      <Table.Td>{t.counts.calls}</Table.Td>
                      <Table.Td>{t.counts.documents}</Table.Td>
                      <Table.Td>{t.counts.phone_numbers}</Table.Td>
                      <Table.Td>{formatDate(t.created_at)}</Table.Td>
                      <Table.Td ta="right">
                        {/* The platform administrators' own tenant cannot be suspended (409 own_tenant). */}
                        {t.id !== me?.tenant.id && (
                          <Button size="xs" variant="light" color={t.status === 'active' ? 'red' : 'green'} onClick={() => void toggle(t)}>
                            {t.status === 'active' ? 'Suspend' : 'Reactivate'}
                          </Button>
                        )}
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
            {list.total > PAGE && <Pagination total={Math.ceil(list.total / PAGE)} value={page} onChange={setPage} />}
          </Stack>
        )}
      </Guard>
    </Stack>
  );
}
