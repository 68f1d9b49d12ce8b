// Where call recordings live: the RecordingStore interface, the recording key format (checked by every store),
// and the choice between the local store (data folder, or memory in tests) and an S3-compatible bucket.
import type { Config } from '../config.js';
import { LocalRecordingStore } from './local-store.js';
import { S3RecordingStore } from './s3-store.js';

export interface RecordingStore {
  /** Stores the file under `key` and takes it: it is moved into place, or removed once uploaded. */
  put(key: string, file: string, contentType: string): Promise<void>;
  /** Null when there is no such recording. */
  get(key: string): Promise<Buffer | null>;
  /** Succeeds when there is nothing to delete. */
  delete(key: string): Promise<void>;
  /** A URL anyone holding it may download the recording from until it expires. */
  signedUrl(key: string, ttlMs: number): Promise<string>;
}

/** Path segments of letters, digits, `.`, `_`, `-`, none starting with a dot: no `..`, no absolute paths. */
const KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,7}$/;

export function isRecordingKey(key: string): boolean {
  return KEY.test(key);
}

/** Keys reach the file system and URLs: anything else is refused before it gets near either. */
export function assertRecordingKey(key: string): void {
  if (!isRecordingKey(key)) throw new Error(`invalid recording key ${JSON.stringify(key.slice(0, 200))}`);
}

export const recordingKey = (tenantId: string, callId: string) => `${tenantId}/${callId}.wav`;

/** Where LiveKit's Egress writes a LiveKit call's recording (Ogg/Opus of the room) in the recordings bucket. */
export const egressRecordingKey = (tenantId: string, callId: string) => `recordings/${tenantId}/${callId}.ogg`;

export function createRecordingStore(config: Pick<Config, 'recordings' | 'publicBaseUrl'>, secretKey: string): RecordingStore {
  const { s3, dir } = config.recordings;
  if (s3) return new S3RecordingStore(s3);
  return new LocalRecordingStore({ dir, secretKey, publicBaseUrl: config.publicBaseUrl });
}
