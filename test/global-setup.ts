// Vitest global setup: runs once per `vitest run`, before any worker.
import { ensureDatabaseSnapshot } from './db-snapshot.js';

export default async function setup(): Promise<void> {
  await ensureDatabaseSnapshot();
}
