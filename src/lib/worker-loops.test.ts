import { describe, expect, it } from 'vitest';
import { Waker, WorkerLoops } from './worker-loops.js';

const HOUR = 3_600_000;

describe('Waker', () => {
  it('ends a sleep when woken, and a wake with nobody asleep ends the next sleep at once', async () => {
    const waker = new Waker();
    const asleep = waker.sleep(HOUR);
    waker.wake();
    await asleep; // would take an hour otherwise
    waker.wake();
    await waker.sleep(HOUR);
    waker.wake();
    waker.reset();
    let ended = false;
    const sleep = waker.sleep(HOUR).then(() => (ended = true));
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(false); // reset forgot the wake
    waker.wake();
    await sleep;
  });
});

describe('WorkerLoops', () => {
  it('works until nothing is due, sleeps, is woken by new work, logs errors and goes on, stops', async () => {
    const queue: string[] = ['a', 'b'];
    const done: string[] = [];
    const errors: unknown[] = [];
    let failNext = false;
    let idle!: () => void;
    let idleAgain = new Promise<void>((r) => (idle = r));
    const loops = new WorkerLoops(
      async () => {
        if (failNext) {
          failNext = false;
          throw new Error('boom');
        }
        const item = queue.shift();
        if (item === undefined) {
          idle();
          return false;
        }
        done.push(item);
        return true;
      },
      (err) => errors.push(err),
      HOUR,
    );
    loops.start(1);
    await idleAgain;
    expect(done).toEqual(['a', 'b']);
    idleAgain = new Promise<void>((r) => (idle = r));
    queue.push('c');
    loops.wake(); // an hour's poll otherwise
    await idleAgain;
    expect(done).toEqual(['a', 'b', 'c']);
    idleAgain = new Promise<void>((r) => (idle = r));
    failNext = true;
    queue.push('d');
    loops.wake();
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(1);
    loops.wake(); // after an error the loop sleeps a poll; woken, it goes on
    await idleAgain;
    expect(done).toEqual(['a', 'b', 'c', 'd']);
    await loops.stop();
    expect(loops.isRunning).toBe(false);
  });
});
