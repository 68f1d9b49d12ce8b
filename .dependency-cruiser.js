// Dependency rules for src/ (`npm run check:deps`, run in CI): no import cycles, and dependencies point down
// (routes -> services -> db/lib; only main.ts reaches into http/). See src/README.md, "Layers".
/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle: one of these modules must stop importing the other (move the shared part down).',
      // Type-only imports count too: a cycle of types is still two modules that cannot be understood apart.
      from: {},
      to: { circular: true },
    },
    {
      name: 'http-only-from-http-and-main',
      severity: 'error',
      comment: 'Only src/http/ and src/main.ts may import src/http/: domain code must not know about HTTP.',
      from: { path: '^src/', pathNot: ['^src/http/', '^src/main\\.ts$'] },
      to: { path: '^src/http/' },
    },
    {
      name: 'no-route-to-route',
      severity: 'error',
      comment: 'A route module must not import another route: move what they share to a service or to http/.',
      from: { path: '^src/http/routes/([^/]+)\\.ts$' },
      to: { path: '^src/http/routes/', pathNot: '^src/http/routes/$1\\.ts$' },
    },
    {
      name: 'lib-is-the-bottom',
      severity: 'error',
      comment: 'src/lib/ holds small shared helpers: it imports nothing of src/ outside lib/ (every other folder is above it).',
      from: { path: '^src/lib/' },
      to: { path: '^src/', pathNot: '^src/lib/' },
    },
    {
      name: 'db-does-not-import-services',
      severity: 'error',
      comment: 'src/db/ is below the services: it must not import them (only the settings schema, for its types).',
      from: { path: '^src/db/' },
      to: { path: '^src/services/', pathNot: '^src/services/settings-schema\\.ts$' },
    },
    {
      name: 'db-takes-only-types-from-the-settings-schema',
      severity: 'error',
      comment: "db/schema.ts types its JSON columns with the settings schema's types ($type<>()); no run-time import.",
      from: { path: '^src/db/' },
      to: { path: '^src/services/settings-schema\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'nothing-imports-the-composition-root',
      severity: 'error',
      comment: 'deps.ts builds everything: only main.ts and http/ (which is handed its Deps) may import it.',
      from: { path: '^src/', pathNot: ['^src/main\\.ts$', '^src/http/'] },
      to: { path: '^src/deps\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
};
