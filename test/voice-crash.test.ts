// A voice call's process killed mid-conversation (SIGKILL, no shutdown): every turn spoken before the kill is in
// the database, in order; the call picked up again continues with the whole conversation as the model's history
// and without a second greeting; and its recording is one file with both parts, each at its time in the call.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';
import { seedDataDir } from './db-snapshot.js';
import { FakeOpenAI } from './fakes/openai.js';

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await new FakeOpenAI().start();
});
afterAll(() => fake.stop());

type Line = {
  call?: { tenantId: string; callId: string };
  saying?: number;
  turn?: { seq: number; speaker: string; text: string };
  done?: { status: string };
};

function startCall(dataDir: string, env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'test/harness/voice-call.ts'], {
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, OPENAI_BASE_URL: fake.baseURL, FAKE_OPENAI_KEY: fake.apiKey, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Line[] = [];
  const waiters: (() => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(JSON.parse(l) as Line);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // Generous: the real-time conversation stretches on a loaded machine (60 s was not enough at a load of 12).
  const until = async (what: string, test: (lines: Line[]) => boolean, timeoutMs = 100_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!test(lines)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(lines)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { child, lines, until, exited };
}

// The process always runs on the embedded database (its own data folder): nothing here differs over the wire.
describe.skipIf(process.env.TEST_DB === 'wire')('a voice call survives its process being killed', () => {
  it('SIGKILL mid-conversation: no spoken turn lost; the call continues with its history', async () => {
    // The migrated database unpacked into the folder: the harness skips initdb and the migrations.
    const dataDir = await seedDataDir(mkdtempSync(path.join(tmpdir(), 'va-voice-crash-')));
    fake.chatScript = (body) => ({
      text: `Answer number ${(body.messages as { role: string }[]).filter((m) => m.role === 'user').length}.`,
    });
    const first = startCall(dataDir, {
      UTTERANCES: JSON.stringify(['I would like to book an appointment.', 'Next Tuesday morning please.', 'And where can I park my car?']),
    });
    // Two questions answered, then the kill while the caller asks the third.
    // (The harness reports turns from its own polling: on a busy machine the fifth can come after `saying`.)
    await first.until('the third question', (ls) => ls.some((l) => l.saying === 2) && ls.filter((l) => l.turn).length >= 5);
    await new Promise((r) => setTimeout(r, 500));
    first.child.kill('SIGKILL');
    await first.exited;
    const killedAt = Date.now();
    const { tenantId, callId } = first.lines.find((l) => l.call)!.call!;
    const spoken = first.lines.filter((l) => l.turn).map((l) => l.turn!);
    expect(spoken.map((t) => t.speaker)).toEqual(['agent', 'caller', 'agent', 'caller', 'agent']);
    expect(spoken[2]!.text).toBe('Answer number 1.');
    expect(spoken[4]!.text).toBe('Answer number 2.');

    // Straight from the data folder: every reported turn, same order, same words; the call not ended.
    const pg = await PGlite.create({ dataDir: path.join(dataDir, 'pglite'), extensions: PGLITE_EXTENSIONS });
    try {
      const stored = await pg.query<{ seq: number; speaker: string; text: string }>(
        'select seq, speaker, text from call_transcripts where call_id = $1 order by seq',
        [callId],
      );
      expect(stored.rows.slice(0, spoken.length)).toEqual(spoken);
      const status = await pg.query<{ status: string }>('select status from calls where id = $1', [callId]);
      expect(status.rows[0]!.status).toBe('in_progress');
    } finally {
      await pg.close();
    }

    // Picked up again: no greeting, and the model sees the whole conversation from before the crash. Untouched for
    // 10 s is the spool sweep's sign that the killed process's recording lost its writer; the sweep reads the file's
    // mtime, so the file is dated 11 s back rather than waited on (the wait was 10 s of this file's 50).
    const spoolDir = path.join(dataDir, 'recordings', '.spool');
    const spooled = readdirSync(spoolDir);
    expect(spooled.length).toBeGreaterThan(0);
    const untouchedSince = new Date(Date.now() - 11_000);
    for (const name of spooled) utimesSync(path.join(spoolDir, name), untouchedSince, untouchedSince);
    const resumedAt = Date.now();
    const requestsBefore = fake.chatRequests.length;
    const second = startCall(dataDir, { TENANT_ID: tenantId, CALL_ID: callId, UTTERANCES: JSON.stringify(['Are you still there?']) });
    await second.until('the call to end', (ls) => ls.some((l) => l.done));
    expect(await second.exited).toBe(0);
    const resumed = second.lines.filter((l) => l.turn).map((l) => l.turn!);
    expect(resumed.slice(0, spoken.length)).toEqual(spoken);
    const after = resumed.slice(spoken.length);
    expect(after[0]?.speaker).toBe('caller'); // not a second greeting
    expect(after.at(-1)).toMatchObject({ speaker: 'agent' });
    const request = fake.chatRequests.slice(requestsBefore).at(-1)!;
    const history = (request.messages as { role: string; content: string }[]).filter((m) => m.role !== 'system');
    expect(history.map((m) => m.content).slice(0, spoken.length)).toEqual(spoken.map((t) => t.text));
    expect(second.lines.find((l) => l.done)!.done).toMatchObject({ status: 'completed' });

    // One recording: the first part recovered from the killed process's spool file (all but its last 2 s), the
    // second merged in at its time on the call's clock, silence between (the call was not connected).
    const db = await PGlite.create({ dataDir: path.join(dataDir, 'pglite'), extensions: PGLITE_EXTENSIONS });
    let events: { type: string; data: Record<string, number | boolean> }[];
    let recordingMs: number;
    try {
      events = (
        await db.query<{ type: string; data: Record<string, number | boolean> }>(
          "select type, extra_data as data from call_events where call_id = $1 and type like 'recording.%' order by occurred_at",
          [callId],
        )
      ).rows;
      recordingMs = (await db.query<{ recording_ms: number }>('select recording_ms from calls where id = $1', [callId])).rows[0]!
        .recording_ms;
    } finally {
      await db.close();
    }
    expect(events.map((e) => e.type)).toEqual(['recording.recovered', 'recording.saved']);
    const [recovered, saved] = [events[0]!.data, events[1]!.data] as { duration_ms: number; offset_ms?: number; merged?: boolean }[];
    expect(saved).toMatchObject({ merged: true, duration_ms: recordingMs });
    // The first part ran from the call's start until 2-3 s before the kill; the second started no earlier than the
    // second process did, after the kill.
    expect(recovered!.duration_ms).toBeGreaterThan(5000);
    expect(saved!.offset_ms!).toBeGreaterThan(recovered!.duration_ms + (resumedAt - killedAt) + 1000);
    const wav = readFileSync(path.join(dataDir, 'recordings', tenantId, `${callId}.wav`));
    expect(wav.readUInt32LE(40)).toBe(wav.length - 44);
    const RATE = wav.readUInt32LE(24);
    const left = (fromMs: number, toMs: number) => {
      const out: number[] = [];
      for (let i = Math.floor((fromMs * RATE) / 1000); i < Math.floor((toMs * RATE) / 1000); i++) out.push(wav.readInt16LE(44 + i * 4));
      return out;
    };
    const loud = (xs: number[]) => xs.filter((x) => Math.abs(x) > 1000).length;
    const silent = (xs: number[]) => xs.every((x) => x === 0);
    // The caller's line (its noise and speech) fills each part; nothing is between them.
    const part1 = left(500, recovered!.duration_ms);
    expect(part1.filter((x) => x !== 0).length).toBeGreaterThan(part1.length * 0.75);
    expect(loud(part1)).toBeGreaterThan(RATE); // the questions asked before the kill
    expect(silent(left(recovered!.duration_ms, saved!.offset_ms!))).toBe(true);
    const part2 = left(saved!.offset_ms! + 100, recordingMs);
    expect(part2.filter((x) => x !== 0).length).toBeGreaterThan(part2.length * 0.75);
    expect(loud(part2)).toBeGreaterThan(RATE / 4); // "Are you still there?"
  }, 240_000);
});
