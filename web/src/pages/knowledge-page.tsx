// The knowledge base: drop several files at once and watch each one become ready (chunks done / total) or fail with
// its reason; replace or delete a document; and a search playground showing what the agent would find.
import '@mantine/dropzone/styles.css';
import {
  Alert,
  Badge,
  Button,
  Group,
  Mark,
  NumberInput,
  Pagination,
  Paper,
  Progress,
  SegmentedControl,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
  VisuallyHidden,
} from '@mantine/core';
import { Dropzone, type FileRejection } from '@mantine/dropzone';
import { useRef, useState, type FormEvent } from 'react';
import { api, authedFetch, must } from '../api/client';
import { apiErrorFrom, messageOf } from '../api/errors';
import type { DocumentView, SearchHit } from '../api/types';
import { Section } from '../components/section';
import { EmptyState, ErrorAlert, Guard, notifyError, notifyOk } from '../components/status';
import { formatBytes, formatDate } from '../lib/format';
import { highlightParts } from '../lib/highlight';
import { useInterval, useLoad } from '../lib/use-load';
import { useSession } from '../session';

const PAGE = 25;
const ACCEPT = {
  'application/pdf': ['.pdf'],
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': ['.docx'],
  'text/html': ['.html', '.htm'],
  'text/markdown': ['.md', '.markdown'],
  'text/plain': ['.txt', '.text'],
};

/** A file sent from this page: its upload, then the document it became. */
interface Upload {
  key: string;
  name: string;
  size: number;
  state: 'uploading' | 'sent' | 'refused';
  error?: string;
  documentId?: string;
}

const working = (d: DocumentView) => d.status === 'pending' || d.status === 'processing';

async function sendFile(file: File, replaceId?: string): Promise<DocumentView> {
  const form = new FormData();
  form.append('file', file, file.name);
  const url = replaceId ? `/api/v1/documents/${encodeURIComponent(replaceId)}` : '/api/v1/documents';
  const res = await authedFetch(new Request(url, { method: replaceId ? 'PUT' : 'POST', body: form }));
  if (!res.ok) throw await apiErrorFrom(res);
  return (await res.json()) as DocumentView;
}

export default function KnowledgePage() {
  const { isAdmin } = useSession();
  const [page, setPage] = useState(1);
  const docs = useLoad(() => must(api.GET('/api/v1/documents', { params: { query: { limit: PAGE, offset: (page - 1) * PAGE } } })), [page]);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const replaceInput = useRef<HTMLInputElement>(null);
  const [replacing, setReplacing] = useState<string | null>(null);

  // Poll while any document is being ingested: progress moves, then ready or failed with its reason.
  const busy = (docs.data?.items ?? []).some(working) || uploads.some((u) => u.state === 'uploading');
  useInterval(() => void docs.reload(), 1500, busy);

  const update = (key: string, patch: Partial<Upload>) => setUploads((all) => all.map((u) => (u.key === key ? { ...u, ...patch } : u)));

  function drop(files: File[]) {
    const added = files.map((f, i) => ({ key: `${Date.now()}-${i}-${f.name}`, name: f.name, size: f.size, state: 'uploading' as const }));
    setUploads((all) => [...added, ...all].slice(0, 50));
    files.forEach((file, i) => {
      const key = added[i]!.key;
      sendFile(file)
        .then((doc) => {
          update(key, { state: 'sent', documentId: doc.id });
          void docs.reload();
        })
        .catch((err: unknown) => update(key, { state: 'refused', error: messageOf(err) }));
    });
  }

  function reject(rejections: FileRejection[]) {
    setUploads((all) => [
      ...rejections.map((r, i) => ({
        key: `${Date.now()}-r${i}`,
        name: r.file.name,
        size: r.file.size,
        state: 'refused' as const,
        error: r.errors.map((e) => e.message).join('; '),
      })),
      ...all,
    ]);
  }

  async function replace(file: File | undefined) {
    const id = replacing;
    setReplacing(null);
    if (!file || !id) return;
    try {
      await sendFile(file, id);
      notifyOk(`Replacing with ${file.name}: the current version answers until the new one is ready`);
      void docs.reload();
    } catch (err) {
      notifyError(err, 'Not replaced');
    }
  }

  async function remove(d: DocumentView) {
    if (!window.confirm(`Delete “${d.title}” and everything the agent learnt from it?`)) return;
    try {
      await must(api.DELETE('/api/v1/documents/{id}', { params: { path: { id: d.id } } }));
      notifyOk('Deleted');
      void docs.reload();
    } catch (err) {
      notifyError(err, 'Not deleted');
    }
  }

  const byId = new Map((docs.data?.items ?? []).map((d) => [d.id, d]));

  return (
    <Stack maw={1100}>
      <Title order={2}>Knowledge</Title>
      {isAdmin && (
        <Dropzone
          onDrop={drop}
          onReject={reject}
          accept={ACCEPT}
          multiple
          aria-label="Upload documents"
          inputProps={{ 'aria-label': 'Choose documents to upload' }}
        >
          <Stack align="center" gap={4} py="lg" style={{ pointerEvents: 'none' }}>
            <Text fw={500}>Drop documents here, or click to choose</Text>
            <Text size="sm" c="dimmed">
              PDF, Word (.docx), HTML, Markdown or text; several at once. The agent answers from them once they are ready.
            </Text>
          </Stack>
        </Dropzone>
      )}
      <input
        ref={replaceInput}
        type="file"
        hidden
        accept=".pdf,.docx,.html,.htm,.md,.markdown,.txt"
        onChange={(e) => {
          void replace(e.currentTarget.files?.[0]);
          e.currentTarget.value = '';
        }}
      />

      {uploads.length > 0 && (
        <Paper withBorder p="sm" aria-label="Uploads" aria-live="polite">
          <Group justify="space-between" mb="xs">
            <Text fw={500}>This session’s uploads</Text>
            <Button size="xs" variant="subtle" onClick={() => setUploads((all) => all.filter((u) => u.state === 'uploading'))}>
              Clear
            </Button>
          </Group>
          <Stack gap="xs">
            {uploads.map((u) => (
              <UploadRow key={u.key} upload={u} doc={u.documentId ? byId.get(u.documentId) : undefined} />
            ))}
          </Stack>
        </Paper>
      )}

      <Guard state={docs}>
        {(list) =>
          list.total === 0 ? (
            <EmptyState title="No documents yet">
              {isAdmin
                ? 'Upload your price list, opening hours or FAQ above: the agent answers callers from them.'
                : 'An admin of your account can upload documents for the agent to answer from.'}
            </EmptyState>
          ) : (
            <Stack>
              <Table.ScrollContainer minWidth={720}>
                <Table striped highlightOnHover>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Document</Table.Th>
                      <Table.Th>Status</Table.Th>
                      <Table.Th>Chunks</Table.Th>
                      <Table.Th>Updated</Table.Th>
                      {isAdmin && (
                        <Table.Th>
                          <VisuallyHidden>Actions</VisuallyHidden>
                        </Table.Th>
                      )}
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {list.items.map((d) => (
                      <Table.Tr key={d.id}>
                        <Table.Td>
                          <Text fw={500} style={{ wordBreak: 'break-word' }}>
                            {d.title}
                          </Text>
                          <Text size="xs" c="dimmed">
                            {d.format} · {formatBytes(d.size_bytes)} · version {d.version}
                          </Text>
                        </Table.Td>
                        <Table.Td maw={320}>
                          <DocStatus doc={d} />
                        </Table.Td>
                        <Table.Td>{d.chunk_count}</Table.Td>
                        <Table.Td>{formatDate(d.updated_at)}</Table.Td>
                        {isAdmin && (
                          <Table.Td>
                            <Group gap={4} wrap="nowrap" justify="flex-end">
                              <Button
                                size="xs"
                                variant="light"
                                onClick={() => {
                                  setReplacing(d.id);
                                  replaceInput.current?.click();
                                }}
                              >
                                Replace
                              </Button>
                              <Button size="xs" variant="subtle" color="red" onClick={() => void remove(d)}>
                                Delete
                              </Button>
                            </Group>
                          </Table.Td>
                        )}
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
              {list.total > PAGE && <Pagination total={Math.ceil(list.total / PAGE)} value={page} onChange={setPage} />}
            </Stack>
          )
        }
      </Guard>

      <SearchPlayground />
    </Stack>
  );
}

function DocStatus({ doc }: { doc: DocumentView }) {
  const { chunks_done, chunks_total } = doc.progress;
  if (doc.status === 'failed') {
    return (
      <Stack gap={2}>
        <Badge color="red">failed</Badge>
        <Text size="xs" c="red">
          {doc.error ?? 'The document could not be read'}
        </Text>
      </Stack>
    );
  }
  if (doc.status === 'ready') return <Badge color="green">ready</Badge>;
  const pct = chunks_total ? Math.round((100 * chunks_done) / chunks_total) : 0;
  return (
    <Stack gap={4}>
      <Badge color="blue">{doc.status}</Badge>
      <Progress value={pct} animated size="sm" aria-label={`${doc.title}: ${chunks_done} of ${chunks_total ?? '?'} chunks`} />
      <Text size="xs" c="dimmed">
        {chunks_total ? `${chunks_done} / ${chunks_total} chunks` : 'reading the document…'}
      </Text>
    </Stack>
  );
}

function UploadRow({ upload, doc }: { upload: Upload; doc?: DocumentView }) {
  return (
    <Group justify="space-between" wrap="nowrap" align="flex-start">
      <div style={{ minWidth: 0 }}>
        <Text size="sm" truncate>
          {upload.name}
        </Text>
        <Text size="xs" c="dimmed">
          {formatBytes(upload.size)}
        </Text>
      </div>
      <div style={{ maxWidth: 360, textAlign: 'right' }}>
        {upload.state === 'uploading' && <Badge color="gray">uploading</Badge>}
        {upload.state === 'refused' && (
          <Stack gap={2} align="flex-end">
            <Badge color="red">refused</Badge>
            <Text size="xs" c="red">
              {upload.error}
            </Text>
          </Stack>
        )}
        {upload.state === 'sent' && (doc ? <DocStatus doc={doc} /> : <Badge color="blue">queued</Badge>)}
      </div>
    </Group>
  );
}

type Mode = 'hybrid' | 'vector' | 'fulltext';

function SearchPlayground() {
  const [query, setQuery] = useState('');
  const [mode, setMode] = useState<Mode>('hybrid');
  const [topK, setTopK] = useState<number | string>(5);
  const [results, setResults] = useState<{ query: string; hits: SearchHit[] } | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  async function search(e: FormEvent) {
    e.preventDefault();
    if (!query.trim()) return;
    setBusy(true);
    setError(undefined);
    try {
      const r = await must(
        api.POST('/api/v1/knowledge/search', {
          body: { query: query.trim(), mode, ...(typeof topK === 'number' && { top_k: topK }) },
        }),
      );
      setResults({ query: query.trim(), hits: r.results });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Section title="Search playground" description="Ask what a caller would ask and see the passages the agent would be given, best first.">
      <form onSubmit={(e) => void search(e)}>
        <Group align="flex-end" wrap="wrap">
          <TextInput
            label="Question"
            placeholder="Where can I park?"
            value={query}
            onChange={(e) => setQuery(e.currentTarget.value)}
            style={{ flex: '1 1 280px' }}
            maxLength={2000}
          />
          <NumberInput label="Results" min={1} max={50} value={topK} onChange={setTopK} w={100} />
          <SegmentedControl
            value={mode}
            onChange={(m) => setMode(m as Mode)}
            data={[
              { value: 'hybrid', label: 'Hybrid' },
              { value: 'vector', label: 'Vector' },
              { value: 'fulltext', label: 'Full text' },
            ]}
            aria-label="Search mode"
          />
          <Button type="submit" loading={busy}>
            Search
          </Button>
        </Group>
      </form>
      {error !== undefined && <ErrorAlert error={error} />}
      {results &&
        (results.hits.length === 0 ? (
          <Alert color="gray">
            Nothing matched well enough. Upload a document that answers it, or lower the minimum score in the agent’s settings.
          </Alert>
        ) : (
          <Stack gap="sm">
            {results.hits.map((h, i) => (
              <Paper key={h.chunk_id} withBorder p="sm">
                <Group justify="space-between" mb={4} wrap="wrap">
                  <Text size="sm" fw={600}>
                    {i + 1}. {h.document_title}
                  </Text>
                  <Badge variant="light">score {h.score.toFixed(3)}</Badge>
                </Group>
                {(h.heading_path.length > 0 || h.page !== null) && (
                  <Text size="xs" c="dimmed" mb={4}>
                    {h.heading_path.join(' › ')}
                    {h.page !== null && `${h.heading_path.length ? ' · ' : ''}page ${h.page}`}
                  </Text>
                )}
                <Text size="sm" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-word' }}>
                  {highlightParts(h.text, results.query).map((p, n) =>
                    p.match ? <Mark key={n}>{p.text}</Mark> : <span key={n}>{p.text}</span>,
                  )}
                </Text>
              </Paper>
            ))}
          </Stack>
        ))}
    </Section>
  );
}
