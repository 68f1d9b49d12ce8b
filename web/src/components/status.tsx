// The three states every page shows besides its content: loading, the API's error (never a blank page), and an
// empty state that says what to do next.
import { Alert, Button, Center, Loader, Paper, Stack, Text, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import type { ReactNode } from 'react';
import { ApiError, messageOf } from '../api/errors';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <Center py="xl" aria-busy="true">
      <Loader size="sm" aria-label={label} />
    </Center>
  );
}

export function ErrorAlert({ error, onRetry, title = 'Something went wrong' }: { error: unknown; onRetry?: () => void; title?: string }) {
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <Alert color="red" title={notFound ? 'Not found' : title} role="alert">
      <Stack gap="xs" align="flex-start">
        <Text size="sm">{messageOf(error)}</Text>
        {onRetry && !notFound && (
          <Button size="xs" variant="light" color="red" onClick={onRetry}>
            Try again
          </Button>
        )}
      </Stack>
    </Alert>
  );
}

export function EmptyState({ title, children, action }: { title: string; children?: ReactNode; action?: ReactNode }) {
  return (
    <Paper withBorder p="xl" radius="md">
      <Stack align="center" gap="xs" ta="center">
        <Title order={3} size="h4">
          {title}
        </Title>
        {children && (
          <Text c="dimmed" size="sm" maw={520}>
            {children}
          </Text>
        )}
        {action}
      </Stack>
    </Paper>
  );
}

export function notifyError(err: unknown, title = 'That did not work'): void {
  notifications.show({ color: 'red', title, message: messageOf(err) });
}

export function notifyOk(message: string): void {
  notifications.show({ color: 'green', message });
}

/** Shows loading, the error, or the content once there is data. */
export function Guard<T>({
  state,
  children,
}: {
  state: { data: T | undefined; error: unknown; loading: boolean; reload: () => void | Promise<void> };
  children: (data: T) => ReactNode;
}) {
  if (state.error !== undefined && state.data === undefined) return <ErrorAlert error={state.error} onRetry={() => void state.reload()} />;
  if (state.data === undefined) return <Loading />;
  return (
    <>
      {state.error !== undefined && <ErrorAlert error={state.error} onRetry={() => void state.reload()} />}
      {children(state.data)}
    </>
  );
}
