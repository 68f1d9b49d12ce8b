import { describe, expect, it } from 'vitest';
import { Semaphore } from './semaphore.js';

describe('Semaphore', () => {
  it('lets `size` holders in at once and the others in order as slots free up', async () => {
    const s = new Semaphore(2);
    const order: number[] = [];
    const a = await s.acquire();
    const b = await s.acquire();
    const c = s.acquire().then((release) => (order.push(3), release));
    const d = s.acquire().then((release) => (order.push(4), release));
    expect([s.active, s.queued]).toEqual([2, 2]);
    a();
    a(); // a second release of the same slot changes nothing
    const releaseC = await c;
    expect([s.active, s.queued, order]).toEqual([2, 1, [3]]);
    b();
    (await d)();
    releaseC();
    expect([s.active, s.queued, order]).toEqual([0, 0, [3, 4]]);
  });

  it('an abort while waiting rejects and leaves the queue; run() releases when the work throws', async () => {
    const s = new Semaphore(1);
    const hold = await s.acquire();
    const controller = new AbortController();
    const waiting = s.acquire(controller.signal);
    controller.abort(new Error('barge-in'));
    await expect(waiting).rejects.toThrow('barge-in');
    expect(s.queued).toBe(0);
    hold();
    await expect(s.run(async () => Promise.reject(new Error('engine failed')))).rejects.toThrow('engine failed');
    expect(s.active).toBe(0);
  });
});
