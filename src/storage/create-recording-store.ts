// The choice between the local store (data folder, or memory in tests) and an S3-compatible bucket.
import type { Config } from '../config.js';
import type { SecretKeys } from '../lib/derive-key.js';
import { LocalRecordingStore } from './local-store.js';
import type { RecordingStore } from './recording-store.js';
import { S3RecordingStore } from './s3-store.js';

export function createRecordingStore(config: Pick<Config, 'recordings' | 'publicBaseUrl'>, secretKey: SecretKeys): RecordingStore {
  const { s3, dir } = config.recordings;
  if (s3) return new S3RecordingStore(s3);
  return new LocalRecordingStore({ dir, secretKey, publicBaseUrl: config.publicBaseUrl });
}
