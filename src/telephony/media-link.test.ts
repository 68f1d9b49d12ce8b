import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { AUDIO, type Batch, Batcher, readBatch } from './media-link.js';

type Item = { k: 'mark'; id: number; mark: number } | { k: 'clear'; id: number };

describe('the media link', () => {
  it('carries objects, audio and gaps in one batch per loop turn, in the order said, through advanced serialization', async () => {
    const batches: Batch<Item>[] = [];
    // What child.send with serialization 'advanced' does: V8's serializer on one side, its deserializer on the other.
    const out = new Batcher<Item>((batch) => batches.push(deserialize(serialize(batch)) as Batch<Item>));
    const pcm = (from: number, n: number) => Int16Array.from({ length: n }, (_, i) => from + i);
    out.audio(AUDIO.send, 7, 20.5, pcm(100, 3));
    out.add({ k: 'mark', id: 7, mark: 1 });
    out.gap(42.25);
    out.audio(AUDIO.played, 9, 40, pcm(-5, 2));
    out.add({ k: 'clear', id: 9 });
    out.audio(AUDIO.caller, 7, 60, new Int16Array(0));
    expect(batches).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(batches).toHaveLength(1);

    const read: unknown[] = [];
    readBatch(batches[0]!, {
      item: (item) => read.push(item),
      audio: (code, id, ts, samples) => read.push([code, id, ts, Array.from(samples)]),
      gap: (ms) => read.push(['gap', ms]),
    });
    expect(read).toEqual([
      [AUDIO.send, 7, 20.5, [100, 101, 102]],
      { k: 'mark', id: 7, mark: 1 },
      ['gap', 42.25],
      [AUDIO.played, 9, 40, [-5, -4]],
      { k: 'clear', id: 9 },
      [AUDIO.caller, 7, 60, []],
    ]);

    // The next turn's batch starts empty.
    out.add({ k: 'clear', id: 1 });
    out.flush();
    expect(batches[1]).toMatchObject({ items: [{ k: 'clear', id: 1 }], pcm: new Int16Array(0) });
  });
});
