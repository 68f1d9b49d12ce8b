// The background thread, seen from the service: starts background-thread.mjs (webhook delivery and post-call
// analysis, background-work.ts) with the service's configuration and its database's connection, wakes its workers
// when something is queued here, counts its delivery attempts in the operator metrics, starts it again if it dies,
// and stops it before the database closes. Only when the database is reachable from another thread (PostgreSQL, or
// the embedded database in its own thread): PGlite on the event loop keeps these workers on it (deps.ts).
import { Worker } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import type { BackgroundData, FromBackground, ToBackground } from './background-work.js';

const RESTART_DELAY_MS = 5_000;
const STOP_WAIT_MS = 15_000;

export class BackgroundThread {
  private worker: Worker | undefined;
  private closing = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** The current thread's workers run (it said `ready`). */
  private ready = false;

  constructor(
    private readonly data: BackgroundData,
    private readonly log: FastifyBaseLogger,
    private readonly onAttempt: (outcome: 'delivered' | 'failed', seconds: number) => void,
  ) {}

  /**
   * Starts the thread; resolves once both workers run in it, rejects if this first start failed (the thread is
   * started again after RESTART_DELAY_MS all the same, as after any exit).
   */
  async start(): Promise<void> {
    const worker = this.spawn();
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: FromBackground) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'error') reject(new Error(`the background thread did not start: ${m.message}`));
      });
      // Stopped while starting (the service is closing): not a failure.
      worker.once('exit', (code) =>
        this.closing ? resolve() : reject(new Error(`the background thread exited (${code}) while starting`)),
      );
    });
  }

  wake(which: 'webhooks' | 'analysis'): void {
    this.worker?.postMessage(`wake-${which}` satisfies ToBackground);
  }

  /** Claims nothing new; work in flight is aborted and handed back to its queue (as the workers' own stop()). */
  async stop(): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    if (!this.ready) {
      // Still loading its modules: ended at once, as a crash would end it (a claim it made meanwhile comes back
      // after its lease, at once on the embedded database).
      await worker.terminate();
      this.worker = undefined;
      return;
    }
    const done = new Promise<void>((resolve) => {
      worker.on('message', (m: FromBackground) => m.type === 'stopped' && resolve());
      worker.once('exit', () => resolve());
    });
    worker.postMessage('stop' satisfies ToBackground);
    const timer = setTimeout(() => void worker.terminate(), STOP_WAIT_MS);
    await done;
    clearTimeout(timer);
    await worker.terminate();
    this.worker = undefined;
  }

  private spawn(): Worker {
    // execArgv []: the parent's flags (`--import` of a loader, --cpu-prof) are not the thread's business, and a
    // TypeScript preload would fail there (the thread loads its own code, background-thread.mjs).
    const worker = new Worker(new URL('./background-thread.mjs', import.meta.url), { execArgv: [], workerData: this.data });
    this.worker = worker;
    this.ready = false;
    worker.on('message', (m: FromBackground) => {
      if (m.type === 'ready') this.ready = true;
      else if (m.type === 'attempt') this.onAttempt(m.outcome, m.seconds);
      else if (m.type === 'error') this.log.error({ error: m.message }, 'background thread failed');
    });
    worker.on('error', (err) => this.log.error({ err }, 'background thread error'));
    worker.on('exit', (code) => {
      if (this.closing || this.worker !== worker) return;
      this.worker = undefined;
      // Its claims come back after their leases (at once on the embedded database, at the restart).
      this.log.error({ code }, 'background thread stopped; starting it again');
      this.restartTimer = setTimeout(() => {
        if (!this.closing) this.spawn();
      }, RESTART_DELAY_MS);
    });
    return worker;
  }
}
