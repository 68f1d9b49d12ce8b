// The agent: who it is (name, prompt, greeting, language), how a call behaves, which engines it uses with the
// tenant's own keys (write-only), its HTTP tools and the signing secret. Each card saves its own part of the settings
// (PUT merges), and the API's field errors land on the inputs they name.
import {
  Alert,
  Badge,
  Button,
  Code,
  CopyButton,
  Group,
  Modal,
  NumberInput,
  PasswordInput,
  Select,
  SimpleGrid,
  Stack,
  Switch,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { useState } from 'react';
import { api, must } from '../api/client';
import { fieldErrors } from '../api/errors';
import type { SettingsPatch, SigningSecret, TenantSettings } from '../api/types';
import { Guard, notifyError, notifyOk } from '../components/status';
import { Section } from '../components/section';
import { ToolsEditor } from '../components/tools-editor';
import { formatDate } from '../lib/format';
import { useLoad } from '../lib/use-load';
import { isValid, validateAgent, type AgentForm, type Errors } from '../lib/validate';
import { useSession } from '../session';

type Providers = TenantSettings['providers'];
type KeyName = keyof TenantSettings['provider_keys'];

// Every engine and key name the API knows: `satisfies` makes tsc fail when schema.d.ts gains or loses one.
const STT = { local: 'Local (pocketsphinx)', deepgram: 'Deepgram' } satisfies Record<Providers['stt']['provider'], string>;
const LLM = {
  local: 'Local (answers from documents)',
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  openai_compatible: 'OpenAI-compatible server',
} satisfies Record<Providers['llm']['provider'], string>;
const TTS = { local: 'Local (espeak-ng)', elevenlabs: 'ElevenLabs' } satisfies Record<Providers['tts']['provider'], string>;
const EMBEDDINGS = { local: 'Local (no download)', openai: 'OpenAI' } satisfies Record<Providers['embeddings']['provider'], string>;
const KEYS = {
  openai: 'OpenAI',
  anthropic: 'Anthropic',
  deepgram: 'Deepgram',
  elevenlabs: 'ElevenLabs',
  openai_compatible: 'OpenAI-compatible server',
} satisfies Record<KeyName, string>;

const options = (o: Record<string, string>) => Object.entries(o).map(([value, label]) => ({ value, label }));

export default function AgentPage() {
  const settings = useLoad(() => must(api.GET('/api/v1/settings/tenant')), []);
  const { isAdmin } = useSession();

  async function save(patch: SettingsPatch): Promise<void> {
    const next = await must(api.PUT('/api/v1/settings/tenant', { body: patch }));
    settings.set(next);
    notifyOk('Saved');
  }

  return (
    <Stack maw={960}>
      <Title order={2}>Agent</Title>
      {!isAdmin && <Alert color="gray">You can read these settings; an admin of your account can change them.</Alert>}
      <Guard state={settings}>
        {(s) => (
          <>
            <GeneralCard key={`g${s.updated_at}`} settings={s} save={save} />
            <ProvidersCard key={`p${s.updated_at}`} settings={s} save={save} />
            <KeysCard key={`k${s.updated_at}`} settings={s} save={save} />
            <Section title="Tools" description="Your own HTTP endpoints the agent may call during a conversation (at most 20).">
              <ToolsEditor tools={s.tools} save={(tools) => save({ tools: tools as SettingsPatch['tools'] })} />
            </Section>
            <SigningSecretCard />
          </>
        )}
      </Guard>
    </Stack>
  );
}

/** Runs a save; a validation error's details go on the fields, anything else to a notification. */
async function attempt(run: () => Promise<void>, setErrors: (e: Errors) => void): Promise<void> {
  try {
    setErrors({});
    await run();
  } catch (err) {
    const fields = fieldErrors(err);
    if (Object.keys(fields).length) setErrors(fields);
    notifyError(err, 'Not saved');
  }
}

interface CardProps {
  settings: TenantSettings;
  save: (patch: SettingsPatch) => Promise<void>;
}

function GeneralCard({ settings, save }: CardProps) {
  const [v, setV] = useState<AgentForm>({
    agent_name: settings.agent_name,
    language: settings.language,
    greeting: settings.greeting ?? '',
    system_prompt: settings.system_prompt ?? '',
    transfer_number: settings.call.transfer_number ?? '',
    endpointing_ms: settings.call.endpointing_ms,
    min_interruption_ms: settings.call.min_interruption_ms,
    silence_prompt_s: settings.call.silence_prompt_s,
    max_duration_s: settings.call.max_duration_s,
  });
  const [recording, setRecording] = useState(settings.call.recording);
  const [preemptive, setPreemptive] = useState(settings.call.preemptive_generation);
  const [adaptive, setAdaptive] = useState(settings.call.adaptive_endpointing);
  const [resumption, setResumption] = useState(settings.call.turn_resumption);
  const [vad, setVad] = useState(settings.call.vad);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const text = (k: keyof AgentForm) => ({
    value: v[k] as string,
    error: errors[k],
    onChange: (e: { currentTarget: { value: string } }) => setV({ ...v, [k]: e.currentTarget.value }),
  });
  const num = (k: keyof AgentForm) => ({
    value: v[k] as number,
    error: errors[`call.${k}`],
    onChange: (n: string | number) => setV({ ...v, [k]: typeof n === 'number' ? n : Number.NaN }),
  });

  async function submit() {
    const found = validateAgent(v);
    setErrors(found);
    if (!isValid(found)) return;
    setBusy(true);
    await attempt(
      () =>
        save({
          agent_name: v.agent_name.trim(),
          language: v.language,
          greeting: v.greeting || null,
          system_prompt: v.system_prompt || null,
          call: {
            transfer_number: v.transfer_number || null,
            endpointing_ms: v.endpointing_ms,
            min_interruption_ms: v.min_interruption_ms,
            silence_prompt_s: v.silence_prompt_s,
            max_duration_s: v.max_duration_s,
            recording,
            preemptive_generation: preemptive,
            vad,
            adaptive_endpointing: adaptive,
            turn_resumption: resumption,
          },
        }),
      setErrors,
    );
    setBusy(false);
  }

  return (
    <Section title="Who your agent is" description="What callers hear first and how the agent behaves on a call.">
      <SimpleGrid cols={{ base: 1, sm: 2 }}>
        <TextInput label="Agent name" required {...text('agent_name')} />
        <TextInput label="Language" description="A tag such as en or en-US" {...text('language')} />
      </SimpleGrid>
      <Textarea
        label="Greeting"
        description="Said when a call starts; empty: the agent waits for the caller"
        autosize
        minRows={2}
        {...text('greeting')}
      />
      <Textarea
        label="System prompt"
        description="Instructions for the language model; empty: the built-in prompt"
        autosize
        minRows={4}
        maxRows={16}
        {...text('system_prompt')}
      />
      <Title order={4} size="h5" mt="sm">
        Call behaviour
      </Title>
      <SimpleGrid cols={{ base: 1, sm: 2 }}>
        <NumberInput
          label="Endpointing (ms)"
          description="Silence before the agent answers"
          min={100}
          max={5000}
          step={50}
          {...num('endpointing_ms')}
        />
        <NumberInput
          label="Interruption minimum (ms)"
          description="Caller speech this long interrupts the agent"
          min={0}
          max={3000}
          step={50}
          {...num('min_interruption_ms')}
        />
        <NumberInput
          label="Silence prompt (s)"
          description="The agent checks in after this long"
          min={3}
          max={600}
          {...num('silence_prompt_s')}
        />
        <NumberInput label="Maximum duration (s)" min={30} max={14400} step={60} {...num('max_duration_s')} />
        <TextInput
          label="Transfer number"
          description="Where transfers go (E.164); empty: no transfers"
          placeholder="+14155550100"
          value={v.transfer_number}
          error={errors['call.transfer_number']}
          onChange={(e) => setV({ ...v, transfer_number: e.currentTarget.value.trim() })}
        />
        <Select
          label="Voice activity detection"
          data={options({ silero: 'Silero (neural, robust in noise)', energy: 'Energy (fastest on clean lines)' })}
          value={vad}
          onChange={(x) => x && setVad(x as typeof vad)}
          allowDeselect={false}
        />
      </SimpleGrid>
      <Switch
        label="Adaptive end of turn: answer sooner after a complete question, wait longer after “um”, “and” or digits being read out"
        checked={adaptive}
        onChange={(e) => setAdaptive(e.currentTarget.checked)}
      />
      <Switch
        label="Let the caller go on: speech before the reply is heard (“Yes.” … “And the receipt too?”) drops the reply and makes one longer turn"
        checked={resumption}
        onChange={(e) => setResumption(e.currentTarget.checked)}
      />
      <Switch
        label="Record calls (stereo WAV: caller left, agent right)"
        checked={recording}
        onChange={(e) => setRecording(e.currentTarget.checked)}
      />
      <Switch
        label="Prepare replies while the caller pauses (faster answers; a reply dropped when the caller goes on costs its tokens)"
        checked={preemptive}
        onChange={(e) => setPreemptive(e.currentTarget.checked)}
      />
      <Group justify="flex-end">
        <Button onClick={() => void submit()} loading={busy}>
          Save
        </Button>
      </Group>
    </Section>
  );
}

function ProvidersCard({ settings, save }: CardProps) {
  const [p, setP] = useState<Providers>(settings.providers);
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const field = <K extends keyof Providers>(
    kind: K,
    key: keyof Providers[K] & string,
    label: string,
    extra: { description?: string; placeholder?: string } = {},
  ) => (
    <TextInput
      label={label}
      {...extra}
      value={String(p[kind][key] ?? '')}
      error={errors[`providers.${kind}.${key}`]}
      onChange={(e) => {
        const raw = e.currentTarget.value;
        setP({ ...p, [kind]: { ...p[kind], [key]: raw === '' ? undefined : raw } });
      }}
    />
  );
  const engine = <K extends keyof Providers>(kind: K, label: string, choices: Record<string, string>) => (
    <Select
      label={label}
      data={options(choices)}
      value={p[kind].provider}
      allowDeselect={false}
      error={errors[`providers.${kind}.provider`]}
      onChange={(x) => x && setP({ ...p, [kind]: { ...p[kind], provider: x } })}
    />
  );

  async function submit() {
    setBusy(true);
    const temperature = p.llm.temperature === undefined ? undefined : Number(p.llm.temperature);
    await attempt(() => save({ providers: { ...p, llm: { ...p.llm, temperature } } }), setErrors);
    setBusy(false);
  }

  return (
    <Section
      title="Engines"
      description="Which speech-to-text, language model, voice and embeddings each call uses. Local engines need no key."
    >
      <SimpleGrid cols={{ base: 1, sm: 2 }}>
        <Stack gap="xs">
          {engine('stt', 'Speech to text', STT)}
          {field('stt', 'model', 'Model', { placeholder: 'the engine’s default' })}
          {field('stt', 'language', 'Language', { placeholder: 'the agent’s language' })}
        </Stack>
        <Stack gap="xs">
          {engine('llm', 'Language model', LLM)}
          {field('llm', 'model', 'Model', { placeholder: 'the engine’s default' })}
          {p.llm.provider === 'openai_compatible' && field('llm', 'base_url', 'Base URL', { placeholder: 'https://llm.example.com/v1' })}
          {field('llm', 'temperature', 'Temperature', { placeholder: '0 to 2' })}
        </Stack>
        <Stack gap="xs">
          {engine('tts', 'Text to speech', TTS)}
          {field('tts', 'model', 'Model', { placeholder: 'the engine’s default' })}
          {field('tts', 'voice', 'Voice', { placeholder: 'the engine’s default' })}
        </Stack>
        <Stack gap="xs">
          {engine('embeddings', 'Embeddings', EMBEDDINGS)}
          {field('embeddings', 'model', 'Model', {
            placeholder: 'the engine’s default',
            description: 'Changing it re-indexes every document',
          })}
        </Stack>
      </SimpleGrid>
      <Group justify="flex-end">
        <Button onClick={() => void submit()} loading={busy}>
          Save engines
        </Button>
      </Group>
    </Section>
  );
}

function KeysCard({ settings, save }: CardProps) {
  const [typed, setTyped] = useState<Partial<Record<KeyName, string>>>({});
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState<string | null>(null);

  async function put(name: KeyName, value: string | null) {
    if (value !== null && value.trim().length < 8) {
      setErrors({ [`provider_keys.${name}`]: 'A key has at least 8 characters' });
      return;
    }
    setBusy(name);
    await attempt(() => save({ provider_keys: { [name]: value } }), setErrors);
    setBusy(null);
  }

  return (
    <Section
      title="Provider keys"
      description="Your own keys, stored encrypted and never shown again: only whether one is set and its last 4 characters. Without one, the platform’s key is used if it has one."
    >
      {(Object.keys(KEYS) as KeyName[]).map((name) => {
        const status = settings.provider_keys[name];
        return (
          <Group key={name} align="flex-end" wrap="wrap" gap="xs">
            <PasswordInput
              style={{ flex: '1 1 260px' }}
              label={
                <Group gap={6} component="span">
                  <span>{KEYS[name]}</span>
                  {status.configured ? (
                    <Badge size="xs" color="green" variant="light">
                      configured …{status.last4}
                    </Badge>
                  ) : (
                    <Badge size="xs" color="gray" variant="light">
                      not set
                    </Badge>
                  )}
                </Group>
              }
              placeholder={status.configured ? 'Type a new key to replace it' : 'Paste a key'}
              autoComplete="off"
              value={typed[name] ?? ''}
              error={errors[`provider_keys.${name}`]}
              onChange={(e) => setTyped({ ...typed, [name]: e.currentTarget.value })}
            />
            <Button variant="light" disabled={!typed[name]} loading={busy === name} onClick={() => void put(name, typed[name] ?? '')}>
              Save key
            </Button>
            {status.configured && (
              <Button variant="subtle" color="red" loading={busy === name} onClick={() => void put(name, null)}>
                Remove
              </Button>
            )}
          </Group>
        );
      })}
    </Section>
  );
}

function SigningSecretCard() {
  const status = useLoad(() => must(api.GET('/api/v1/settings/signing-secret')), []);
  const [shown, setShown] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function rotate() {
    setBusy(true);
    try {
      const r = await must(api.POST('/api/v1/settings/signing-secret'));
      setShown(r.secret);
      status.set({
        configured: r.configured,
        created_at: r.created_at,
        last4: r.last4,
        previous_expires_at: r.previous_expires_at,
      } satisfies SigningSecret);
    } catch (err) {
      notifyError(err, 'Not rotated');
    } finally {
      setBusy(false);
    }
  }

  return (
    <Section
      title="Signing secret"
      description="Requests to your tools carry X-Voice-Signature made with this secret: verify it on your server."
    >
      <Guard state={status}>
        {(s) => (
          <Group justify="space-between" wrap="wrap">
            <Text size="sm">
              {s.configured ? (
                <>
                  Configured, ending in <Code>{s.last4}</Code>, since {formatDate(s.created_at)}
                  {s.previous_expires_at && <> (the previous one also signs until {formatDate(s.previous_expires_at)})</>}
                </>
              ) : (
                'No signing secret yet: make one before you rely on tool requests being from us.'
              )}
            </Text>
            <Button variant="light" onClick={() => void rotate()} loading={busy}>
              {s.configured ? 'Rotate' : 'Create secret'}
            </Button>
          </Group>
        )}
      </Guard>
      <Modal opened={shown !== null} onClose={() => setShown(null)} title="Your new signing secret">
        <Stack>
          <Alert color="yellow">This is the only time it is shown. Copy it to your server now.</Alert>
          <Code block style={{ wordBreak: 'break-all' }}>
            {shown}
          </Code>
          <Group justify="flex-end">
            <CopyButton value={shown ?? ''}>
              {({ copied, copy }) => <Button onClick={copy}>{copied ? 'Copied' : 'Copy'}</Button>}
            </CopyButton>
          </Group>
        </Stack>
      </Modal>
    </Section>
  );
}
