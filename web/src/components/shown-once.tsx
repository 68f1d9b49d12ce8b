// A secret the API shows once (an API key, a webhook's signing secret): copy it now.
import { Alert, Button, Code, CopyButton, Group, Modal, Stack } from '@mantine/core';

export function ShownOnce({ title, secret, onClose }: { title: string; secret: string | null; onClose: () => void }) {
  return (
    <Modal opened={secret !== null} onClose={onClose} title={title}>
      <Stack>
        <Alert color="yellow">This is the only time it is shown. Copy it now and keep it somewhere safe.</Alert>
        <Code block style={{ wordBreak: 'break-all' }}>
          {secret}
        </Code>
        <Group justify="flex-end">
          <CopyButton value={secret ?? ''}>{({ copied, copy }) => <Button onClick={copy}>{copied ? 'Copied' : 'Copy'}</Button>}</CopyButton>
        </Group>
      </Stack>
    </Modal>
  );
}
