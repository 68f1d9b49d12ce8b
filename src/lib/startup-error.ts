// Start-up failures a person can act on: one line naming the cause and the fix, and an exit code per cause, so a
// supervisor (systemd, Kubernetes, a script) can tell them apart without reading the text. The codes follow
// sysexits.h where one fits; the README's "Start-up failures" table lists them.

export const EXIT_CODES = {
  /** A variable is missing or invalid (config.ts). EX_CONFIG. */
  config: 78,
  /** DATABASE_URL's server does not answer (refused, unknown host, timeout). EX_UNAVAILABLE. */
  databaseUnreachable: 69,
  /** The server answered and refused the login (user, password) or does not have the database. EX_NOPERM. */
  databaseLogin: 77,
  /** The PostgreSQL server has no pgvector extension to create. EX_OSFILE: a required system file is missing. */
  pgvectorMissing: 72,
  /** HOST:PORT is taken by another process (or not ours to bind). EX_TEMPFAIL: free it, or choose another PORT. */
  portInUse: 75,
} as const;

export type StartupFailure = keyof typeof EXIT_CODES;

/** Thrown by start-up steps (the database, the listening socket); main.ts prints the message and exits with the code. */
export class StartupError extends Error {
  readonly exitCode: number;
  constructor(
    readonly failure: StartupFailure,
    message: string,
  ) {
    super(message);
    this.name = 'StartupError';
    this.exitCode = EXIT_CODES[failure];
  }
}

/** The system error code of a socket error; Node wraps the attempts at each address of a name in an AggregateError. */
export function socketErrorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errors?: unknown[] } | null;
  if (typeof e?.code === 'string') return e.code;
  const first = e?.errors?.find((x) => typeof (x as { code?: unknown })?.code === 'string') as { code: string } | undefined;
  return first?.code;
}
