// `npm run secrets:rotate`: re-seals every stored secret (provider keys, tool headers, signing and webhook secrets)
// under the newest SECRET_KEY, after a rotation put the old key in SECRET_KEY_PREVIOUS. Idempotent; prints the counts.
// On the embedded database, stop the service first (PGlite is one process's); on PostgreSQL it may run beside it.
import { ConfigError, loadConfig } from '../config.js';
import { openDatabase } from '../db/client.js';
import { DataDirBusyError } from '../db/data-dir-lock.js';
import { SecretBox } from '../services/secret-box.js';
import { resealStoredSecrets } from '../services/secret-rotation.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(78);
}
const database = await openDatabase({
  url: config.databaseUrl,
  dataDir: config.dataDir === 'memory://' ? 'memory://' : `${config.dataDir}/pglite`,
  poolMax: 2,
  holder: 'secrets:rotate',
}).catch((err: unknown) => {
  // The embedded database is open in the service: stop it first.
  if (!(err instanceof DataDirBusyError)) throw err;
  console.error(`secrets:rotate refused: ${err.message}`);
  process.exit(75);
});
try {
  const report = await resealStoredSecrets(database.db, new SecretBox(config.secretKeys), {
    onBatch: (table, so) => console.error(`secrets:rotate: ${table} done so far: ${so.resealed} re-sealed of ${so.sealed} sealed`),
  });
  console.log(JSON.stringify(report));
  if (report.unreadable) {
    console.error(`secrets:rotate: ${report.unreadable} sealed values open with no key of the ring (left as they are)`);
    process.exitCode = 1;
  }
} finally {
  await database.close();
}
