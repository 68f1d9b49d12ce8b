// The deployment files (Dockerfile, .dockerignore, docker-compose.yml) checked without Docker, which CI does not
// have: the compose file against the Compose Specification's JSON schema (test/fixtures/compose-spec), and each
// file for what docs/deploy.md promises of it. hadolint is not installable here (docs/deploy.md, "Checks").
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  healthcheck?: { test: unknown };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  environment?: Record<string, string>;
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

function composeValidator() {
  const schema = JSON.parse(read('test/fixtures/compose-spec/compose-spec.json')) as Record<string, unknown>;
  // The schema names draft-07 by an https URI Ajv does not know by that name; it is draft-07, Ajv's default.
  delete schema.$schema;
  // strict off: the schema uses annotations Ajv does not define (deprecated) and formats it does not check.
  return new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
}
// `<<` merge keys (YAML 1.1), as Compose reads them.
const loadCompose = (text: string) => parse(text, { merge: true }) as ComposeFile;

describe('docker-compose.yml', () => {
  const validate = composeValidator();
  const compose = loadCompose(read('docker-compose.yml'));

  it('is valid against the Compose Specification schema (and the check can fail)', () => {
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
    const broken = loadCompose(read('docker-compose.yml').replace('condition: service_healthy', 'condition: when_ready'));
    expect(validate(broken)).toBe(false);
  });

  it('runs the app on PostgreSQL with pgvector and Redis, each pinned and health-checked, started only once healthy', () => {
    const { services } = compose;
    expect(services.postgres?.image).toMatch(/^pgvector\/pgvector:\d+\.\d+\.\d+-pg\d+/);
    for (const [name, s] of Object.entries(services)) {
      // Exact versions: a moving tag would change what a redeploy runs.
      if (s.image && !s.build) expect(s.image, name).toMatch(/:v?\d+\.\d+\.\d+/);
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(condition, `${name} -> ${dep}`).toBe('service_healthy');
        expect(services[dep]?.healthcheck, `${dep} has a health check`).toBeDefined();
      }
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (!source.startsWith('.')) expect(compose.volumes, `${name}: volume ${source} is declared`).toHaveProperty(source);
      }
    }
    expect(services.app?.environment).toMatchObject({
      DATABASE_URL: expect.stringContaining('@postgres:5432/'),
      REDIS_URL: 'redis://redis:6379',
    });
    expect(services.app?.healthcheck?.test).toEqual(expect.arrayContaining([expect.stringContaining('/health/ready')]));
  });

  it('profile scale: two app replicas behind the proxy; profile livekit: a LiveKit server', () => {
    const inProfile = (p: string) => Object.keys(compose.services).filter((n) => compose.services[n]!.profiles?.includes(p));
    expect(inProfile('scale').sort()).toEqual(['app2', 'proxy']);
    expect(compose.services.app2?.environment).toEqual(compose.services.app?.environment);
    expect(read('deploy/Caddyfile')).toMatch(/reverse_proxy app:8000 app2:8000/);
    expect(inProfile('livekit')).toEqual(['livekit']);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const from = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('two stages on an official Node Debian slim image pinned by exact tag', () => {
    expect(from).toEqual(['${NODE_IMAGE}', '${NODE_IMAGE}']);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-bookworm-slim$/m);
    expect(dockerfile).toMatch(/AS build\n[\s\S]*RUN npm ci [\s\S]*RUN npm run build/);
  });

  it('runtime: production dependencies, local engines, tini, a non-root user, health check, data volume', () => {
    expect(runtime).toMatch(/npm ci --omit=dev/);
    for (const pkg of ['espeak-ng', 'pocketsphinx', 'pocketsphinx-en-us', 'tini'])
      expect(runtime).toMatch(new RegExp(`install [^\\n]*\\b${pkg}\\b`));
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/NODE_ENV=production/);
    expect(runtime).toMatch(/^HEALTHCHECK [\s\S]*\/health\/ready/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    expect(runtime).toMatch(/^CMD \["node", "--enable-source-maps", "dist\/main\.js"\]$/m);
    expect(runtime).toMatch(/^VOLUME \["\/data"\]$/m);
  });

  it('.dockerignore keeps local state and secrets out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['node_modules', 'dist', 'data', '.env', '.git']) expect(ignored).toContain(entry);
  });
});

describe('railway.toml', () => {
  it('builds the Dockerfile, starts the compiled build under tini, checks /health/ready, restarts on failure', () => {
    const toml = read('railway.toml');
    expect(toml).toMatch(/^builder = "DOCKERFILE"$/m);
    expect(toml).toMatch(/^startCommand = "\/usr\/bin\/tini -- node --enable-source-maps dist\/main\.js"$/m);
    expect(toml).toMatch(/^preDeployCommand = \["node --enable-source-maps dist\/migrate\.js"\]$/m);
    expect(toml).toMatch(/^healthcheckPath = "\/health\/ready"$/m);
    expect(toml).toMatch(/^restartPolicyType = "ON_FAILURE"$/m);
  });
});
