// Where call recordings live: the RecordingStore interface and the recording key format (checked by every store).
// The choice of store is create-recording-store.ts's, so the stores can import this file without a cycle.

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
