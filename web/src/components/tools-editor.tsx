// The tenant's HTTP tools: a list, and a dialog that edits one with a JSON Schema editor for its arguments. Problems
// are shown on the field they belong to, the schema's with their place in it ("properties.date.type"), whether found
// here (tool-schema.ts) or by the API (details of tools.<i>.<field>).
import {
  ActionIcon,
  Alert,
  Badge,
  Button,
  Group,
  JsonInput,
  List,
  Modal,
  NumberInput,
  Select,
  SimpleGrid,
  Stack,
  Table,
  Text,
  TextInput,
  Textarea,
} from '@mantine/core';
import { useState } from 'react';
import { fieldErrors } from '../api/errors';
import type { Tool } from '../api/types';
import { checkToolParameters, type SchemaIssue } from '../lib/tool-schema';
import type { Errors } from '../lib/validate';
import { EmptyState, notifyError } from './status';

/** A header as edited: a stored one keeps its value unless a new one is typed. */
interface HeaderRow {
  name: string;
  value: string;
  stored?: { configured: boolean; last4: string | null };
}

interface Draft {
  name: string;
  description: string;
  url: string;
  method: 'POST' | 'GET';
  timeout_ms: number;
  parameters: string;
  headers: HeaderRow[];
}

/** What a PUT sends for one tool: header values in clear, or the stored marker to keep them. */
export type ToolInput = Omit<Tool, 'headers'> & { headers: Record<string, string | { configured: true; last4: string | null }> };

const EXAMPLE = JSON.stringify(
  {
    type: 'object',
    properties: { date: { type: 'string', description: 'The day, YYYY-MM-DD' }, party_size: { type: 'integer' } },
    required: ['date'],
  },
  null,
  2,
);

const toDraft = (t?: Tool): Draft => ({
  name: t?.name ?? '',
  description: t?.description ?? '',
  url: t?.url ?? 'https://',
  method: t?.method ?? 'POST',
  timeout_ms: t?.timeout_ms ?? 5000,
  parameters: t ? JSON.stringify(t.parameters, null, 2) : EXAMPLE,
  headers: Object.entries(t?.headers ?? {}).map(([name, stored]) => ({ name, value: '', stored })),
});

function keep(t: Tool): ToolInput {
  const headers: ToolInput['headers'] = {};
  for (const [k, v] of Object.entries(t.headers)) headers[k] = { configured: true, last4: v.last4 };
  return { ...t, headers };
}

/** The draft as the API takes it, or the problems found first. */
export function draftToTool(d: Draft): { tool?: ToolInput; errors: Errors; issues: SchemaIssue[] } {
  const errors: Errors = {};
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(d.name)) errors.name = '1 to 64 lowercase letters, digits or _, starting with a letter';
  if (!d.description.trim()) errors.description = 'Say when the agent should use it';
  if (!/^https?:\/\/[^/\s]+/.test(d.url)) errors.url = 'An http:// or https:// URL';
  if (!Number.isInteger(d.timeout_ms) || d.timeout_ms < 100 || d.timeout_ms > 30_000) errors.timeout_ms = 'Between 100 and 30000 ms';
  const headers: ToolInput['headers'] = {};
  d.headers.forEach((h, i) => {
    if (!h.name.trim()) return;
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/.test(h.name)) errors[`headers.${i}`] = 'Not a valid header name';
    else if (h.value) headers[h.name] = h.value;
    else if (h.stored) headers[h.name] = { configured: true, last4: h.stored.last4 };
    else errors[`headers.${i}`] = 'Give the header a value';
  });
  const { value, issues } = checkToolParameters(d.parameters);
  if (Object.keys(errors).length || !value) return { errors, issues };
  return {
    tool: {
      name: d.name,
      description: d.description.trim(),
      url: d.url,
      method: d.method,
      timeout_ms: d.timeout_ms,
      parameters: value as Tool['parameters'],
      headers,
    },
    errors,
    issues,
  };
}

export function ToolsEditor({ tools, save }: { tools: Tool[]; save: (tools: ToolInput[]) => Promise<void> }) {
  const [editing, setEditing] = useState<number | null>(null);
  const [draft, setDraft] = useState<Draft>(toDraft());
  const [errors, setErrors] = useState<Errors>({});
  const [issues, setIssues] = useState<SchemaIssue[]>([]);
  const [busy, setBusy] = useState(false);

  const open = (i: number) => {
    setEditing(i);
    setDraft(toDraft(tools[i]));
    setErrors({});
    setIssues([]);
  };

  async function submit() {
    if (editing === null) return;
    const checked = draftToTool(draft);
    setErrors(checked.errors);
    setIssues(checked.issues);
    if (!checked.tool) return;
    const list = tools.map(keep);
    list[editing] = checked.tool;
    setBusy(true);
    try {
      await save(list);
      setEditing(null);
    } catch (err) {
      // tools.<i>.<field> for this tool: on its field; the parameters' with their place in the schema.
      const prefix = `tools.${editing}.`;
      const found: Errors = {};
      const schemaIssues: SchemaIssue[] = [];
      for (const [field, message] of Object.entries(fieldErrors(err))) {
        if (!field.startsWith(prefix)) continue;
        const rest = field.slice(prefix.length);
        if (rest === 'parameters' || rest.startsWith('parameters.')) schemaIssues.push({ path: rest.slice('parameters.'.length), message });
        else found[rest.startsWith('headers.') ? 'headers' : rest] = message;
      }
      setErrors(found);
      setIssues(schemaIssues);
      notifyError(err, 'Tool not saved');
    } finally {
      setBusy(false);
    }
  }

  async function remove(i: number) {
    try {
      await save(tools.filter((_, j) => j !== i).map(keep));
    } catch (err) {
      notifyError(err, 'Tool not removed');
    }
  }

  const setHeader = (i: number, patch: Partial<HeaderRow>) =>
    setDraft({ ...draft, headers: draft.headers.map((h, j) => (j === i ? { ...h, ...patch } : h)) });

  return (
    <Stack>
      {tools.length === 0 ? (
        <EmptyState title="No tools yet" action={<Button onClick={() => open(0)}>Add a tool</Button>}>
          A tool lets the agent act during a call: book a table, look up an order. The agent calls your URL with the arguments described by
          a JSON Schema.
        </EmptyState>
      ) : (
        <>
          <Table.ScrollContainer minWidth={560}>
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Request</Table.Th>
                  <Table.Th>Headers</Table.Th>
                  <Table.Th />
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {tools.map((t, i) => (
                  <Table.Tr key={t.name}>
                    <Table.Td>
                      <Text fw={500}>{t.name}</Text>
                      <Text size="xs" c="dimmed" lineClamp={2}>
                        {t.description}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      <Badge variant="light" mr={6}>
                        {t.method}
                      </Badge>
                      <Text span size="sm" style={{ wordBreak: 'break-all' }}>
                        {t.url}
                      </Text>
                    </Table.Td>
                    <Table.Td>{Object.keys(t.headers).length}</Table.Td>
                    <Table.Td>
                      <Group gap={4} justify="flex-end" wrap="nowrap">
                        <Button size="xs" variant="light" onClick={() => open(i)}>
                          Edit
                        </Button>
                        <Button size="xs" variant="subtle" color="red" onClick={() => void remove(i)}>
                          Delete
                        </Button>
                      </Group>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
          <Group>
            <Button variant="light" onClick={() => open(tools.length)} disabled={tools.length >= 20}>
              Add a tool
            </Button>
          </Group>
        </>
      )}

      <Modal
        opened={editing !== null}
        onClose={() => setEditing(null)}
        title={editing !== null && editing < tools.length ? 'Edit tool' : 'New tool'}
        size="xl"
      >
        <SimpleGrid cols={{ base: 1, md: 2 }}>
          <Stack gap="xs">
            <TextInput
              label="Name"
              required
              value={draft.name}
              error={errors.name}
              onChange={(e) => setDraft({ ...draft, name: e.currentTarget.value })}
            />
            <Textarea
              label="Description"
              description="Tells the model when to use it"
              required
              autosize
              minRows={2}
              value={draft.description}
              error={errors.description}
              onChange={(e) => setDraft({ ...draft, description: e.currentTarget.value })}
            />
            <TextInput
              label="URL"
              required
              value={draft.url}
              error={errors.url}
              onChange={(e) => setDraft({ ...draft, url: e.currentTarget.value.trim() })}
            />
            <Group grow>
              <Select
                label="Method"
                data={['POST', 'GET']}
                value={draft.method}
                allowDeselect={false}
                onChange={(m) => m && setDraft({ ...draft, method: m as Draft['method'] })}
              />
              <NumberInput
                label="Timeout (ms)"
                min={100}
                max={30000}
                step={500}
                value={draft.timeout_ms}
                error={errors.timeout_ms}
                onChange={(n) => setDraft({ ...draft, timeout_ms: typeof n === 'number' ? n : Number.NaN })}
              />
            </Group>
            <Text size="sm" fw={500}>
              Headers (your own authentication; values are write-only)
            </Text>
            {errors.headers && (
              <Text size="xs" c="red">
                {errors.headers}
              </Text>
            )}
            {draft.headers.map((h, i) => (
              <Group key={i} gap={4} align="flex-start" wrap="nowrap">
                <TextInput
                  aria-label="Header name"
                  placeholder="Authorization"
                  value={h.name}
                  onChange={(e) => setHeader(i, { name: e.currentTarget.value })}
                  style={{ flex: 1 }}
                  error={errors[`headers.${i}`]}
                />
                <TextInput
                  aria-label="Header value"
                  placeholder={h.stored ? `configured …${h.stored.last4 ?? ''} (type to replace)` : 'value'}
                  value={h.value}
                  onChange={(e) => setHeader(i, { value: e.currentTarget.value })}
                  style={{ flex: 1 }}
                  autoComplete="off"
                />
                <ActionIcon
                  variant="subtle"
                  color="red"
                  size="lg"
                  aria-label="Remove header"
                  onClick={() => setDraft({ ...draft, headers: draft.headers.filter((_, j) => j !== i) })}
                >
                  ×
                </ActionIcon>
              </Group>
            ))}
            <Group>
              <Button
                size="xs"
                variant="subtle"
                onClick={() => setDraft({ ...draft, headers: [...draft.headers, { name: '', value: '' }] })}
                disabled={draft.headers.length >= 10}
              >
                Add header
              </Button>
            </Group>
          </Stack>
          <Stack gap="xs">
            <JsonInput
              label="Arguments (JSON Schema)"
              description="type, properties, required, enum, description, items"
              autosize
              minRows={12}
              maxRows={24}
              formatOnBlur
              validationError="Not valid JSON"
              value={draft.parameters}
              error={issues.length > 0 ? 'The schema has problems: see below' : undefined}
              onChange={(parameters) => setDraft({ ...draft, parameters })}
              styles={{ input: { fontFamily: 'monospace' } }}
            />
            {issues.length > 0 && (
              <Alert color="red" role="alert" p="xs">
                <List size="sm" spacing={2}>
                  {issues.map((i, n) => (
                    <List.Item key={n}>
                      <Text span ff="monospace" size="sm">
                        {i.path || '(the schema)'}
                      </Text>
                      : {i.message}
                    </List.Item>
                  ))}
                </List>
              </Alert>
            )}
          </Stack>
        </SimpleGrid>
        <Group justify="flex-end" mt="md">
          <Button variant="default" onClick={() => setEditing(null)}>
            Cancel
          </Button>
          <Button onClick={() => void submit()} loading={busy}>
            Save tool
          </Button>
        </Group>
      </Modal>
    </Stack>
  );
}
