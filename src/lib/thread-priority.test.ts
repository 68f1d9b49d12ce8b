import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { threadsNamed, threadStat } from '../../test/threads.js';
import { lowerThreadPriority } from './thread-priority.js';

/** Runs lowerThreadPriority(name, by) `times` times in a fresh worker thread; its name and nice before and after. */
async function inWorker(name: string, by: number, times = 1): Promise<{ before: number; after: number; comm: string }> {
  // A worker does not inherit vitest's TypeScript loader: it loads the module through tsx, as the service's threads do.
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { readFileSync } = require('node:fs');
    const stat = () => readFileSync('/proc/thread-self/stat', 'utf8');
    const nice = () => Number(stat().slice(stat().lastIndexOf(')') + 2).split(' ')[16]);
    import('tsx/esm/api')
      .then(({ tsImport }) => tsImport(workerData.module, workerData.parent))
      .then(({ lowerThreadPriority }) => {
        const before = nice();
        for (let i = 0; i < workerData.times; i++) lowerThreadPriority(workerData.name, workerData.by);
        const comm = readFileSync('/proc/thread-self/comm', 'utf8').trim();
        parentPort.postMessage({ before, after: nice(), comm });
      });`;
  const worker = new Worker(code, {
    eval: true,
    workerData: { module: './thread-priority.ts', parent: import.meta.url, name, by, times },
  });
  try {
    return await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  } finally {
    await worker.terminate();
  }
}

describe.runIf(process.platform === 'linux')('lowerThreadPriority (Linux: every thread has a nice value of its own)', () => {
  it('makes the calling worker thread `by` levels nicer than the main thread, once however often it is called, and names it', async () => {
    const main = threadStat(process.pid).nice;
    expect(await inWorker('test-lowered', 3, 2)).toEqual({ before: main, after: main + 3, comm: 'test-lowered' });
    // The main thread is left as it was.
    expect(threadStat(process.pid).nice).toBe(main);
  });

  it('never raises a thread, caps at 19 and cuts the name to the 15 characters Linux keeps', async () => {
    const main = threadStat(process.pid).nice;
    expect(await inWorker('a-rather-long-thread-name', 0)).toMatchObject({ after: main, comm: 'a-rather-long-t' });
    expect(await inWorker('test-capped', 40)).toMatchObject({ after: 19 });
  });

  it("lowerOtherThreads, from the main thread, lowers every other thread the process has (Node's own) and not itself", () => {
    // In a process of its own: lowered here, vitest's own threads would stay so for the files after this one.
    const code = `
      import { readdirSync } from 'node:fs';
      import { lowerOtherThreads } from ${JSON.stringify(new URL('./thread-priority.ts', import.meta.url).pathname)};
      import { threadStat } from ${JSON.stringify(new URL('../../test/threads.ts', import.meta.url).pathname)};
      lowerOtherThreads(4);
      const others = readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid);
      console.log(JSON.stringify({ main: threadStat(process.pid).nice, others: others.map((t) => threadStat(t).nice) }));`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    const { main, others } = JSON.parse(res.stdout) as { main: number; others: number[] };
    expect(main).toBe(threadStat(process.pid).nice);
    // At least V8's platform workers (4 by default); every one of them 4 levels below.
    expect(others.length).toBeGreaterThanOrEqual(4);
    expect(new Set(others)).toEqual(new Set([main + 4]));
  });

  it('does nothing on the main thread (the event loop, which it exists to favour)', () => {
    // Its name, nice value and policy (not its CPU time, which a scheduler tick between the two reads moves on).
    const main = () => {
      const { comm, nice, policy } = threadStat(process.pid);
      return { comm, nice, policy };
    };
    const before = main();
    lowerThreadPriority('not-main', 5);
    expect(main()).toEqual(before);
    expect(threadsNamed('not-main')).toEqual([]);
  });
});

describe.runIf(process.platform !== 'linux')('lowerThreadPriority (elsewhere)', () => {
  it('changes nothing and does not throw', async () => {
    const os = await import('node:os');
    const before = os.getPriority();
    lowerThreadPriority('elsewhere', 5);
    expect(os.getPriority()).toBe(before);
  });
});
