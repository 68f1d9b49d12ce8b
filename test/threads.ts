// A process's threads as Linux shows them (/proc/<pid>/task/<tid>): names and nice values, for the tests of the
// threads that lower their own priority (src/lib/thread-priority.ts).
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadStat {
  tid: number;
  comm: string;
  nice: number;
  /** Scheduling policy (0 SCHED_OTHER, 3 SCHED_BATCH, 5 SCHED_IDLE, ...). */
  policy: number;
  /** CPU time used, user + system, in clock ticks (sysconf CLK_TCK a second). */
  cpuTicks: number;
}

export function threadStat(tid: number, pid: number | 'self' = 'self'): ThreadStat {
  const dir = `/proc/${pid}/task/${tid}`;
  const stat = readFileSync(`${dir}/stat`, 'utf8');
  // "tid (comm) state ppid ...": the comm may hold spaces and parentheses, so fields are counted from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the comm, the line's 3rd field is the first here: utime 14th, stime 15th, nice 19th, policy 41st.
  return {
    tid,
    comm: readFileSync(`${dir}/comm`, 'utf8').trim(),
    nice: Number(fields[16]),
    policy: Number(fields[38]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
  };
}

/** The live threads of the process (a thread that ends meanwhile is skipped). */
export function threads(pid: number | 'self' = 'self'): ThreadStat[] {
  const found: ThreadStat[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    try {
      found.push(threadStat(tid, pid));
    } catch {
      // ended
    }
  }
  return found;
}

export const threadsNamed = (name: string, pid: number | 'self' = 'self'): ThreadStat[] => threads(pid).filter((t) => t.comm === name);

/**
 * How many nice levels below the process's main thread the threads named `name` run, each distinct value once ([]
 * when there is none). Distinct: threads a worker starts after naming itself (onnxruntime's, say) carry its name and
 * priority, and a test process may hold a second such worker left by an earlier test.
 */
export function loweredBy(name: string, pid: number | 'self' = 'self'): number[] {
  const main = threadStat(pid === 'self' ? process.pid : pid, pid).nice;
  return [...new Set(threadsNamed(name, pid).map((t) => t.nice - main))].sort((a, b) => a - b);
}
