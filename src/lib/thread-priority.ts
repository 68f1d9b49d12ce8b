// Lowers the CPU priority of the service's threads other than the main one, so that on a busy core the event loop,
// which paces every live call's audio (a frame each 20 ms), wins over them. Linux's scheduler otherwise treats every
// thread alike: the main thread, the heaviest user, often lost the core to a thread that had just woken up, and its
// frame timers then fired late. Only ever lower: raising the main thread instead would need privileges (CAP_SYS_NICE)
// the service does not have.
import { readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { debuglog } from 'node:util';
import { isMainThread } from 'node:worker_threads';

const debug = debuglog('thread-priority');

/**
 * How many nice levels below the main thread each thread runs (each level is about 20% less of a contended core).
 * Measured with bench:calls at 150 calls on one core (pairs of runs; the runs drift a lot, so read these as
 * directions): the database's thread is the event loop's main rival (~15% of the core) and the one that helps the
 * frame gap, but a reply's knowledge search waits on it: at 10 retrieval p95 went from 300-640 ms to 1565 ms, at 3 it
 * held only with Node's own threads lowered too (which frees the core for it). The background thread (~1%) and
 * document ingestion are not waited on by a caller within a frame: lowered far. Not configurable: these
 * are relations between our own threads, not a deployment's choice.
 */
export const THREAD_NICE = {
  /** The embedded database (db/pglite-thread.mjs): every query, including the knowledge search a reply waits for. */
  pglite: 3,
  /**
   * The off-thread Silero VAD (voice/vad/silero-worker.mjs): its results are awaited within a few frames, and its end
   * of speech starts every answer. At 10 (when the event loop paced Twilio's audio itself) it was starved at 150 calls:
   * with the media process pacing it, 3 answered sooner in three alternating pairs of runs (voice-to-voice p95 1616,
   * 1484, 1746 ms against 1766, 1793, 1991; frames late as sent unchanged).
   */
  'silero-vad': 3,
  /** Webhook delivery and post-call analysis (background-thread.mjs). */
  background: 10,
  /** Document extraction, chunking and embedding (rag/document-worker.mjs). */
  documents: 10,
  /**
   * Node's own threads, there before our code runs (main.ts): V8's platform workers (concurrent GC marking and
   * sweeping and the optimizing compiler, for every thread's heap, ~13% of the core together), the inspector's signal
   * thread, libuv's pool when already started. Lowered, they leave the core to the database's thread; what GC work
   * they do not get to, the main thread does itself (its CPU rose about 2 points).
   */
  node: 10,
};

/** Whether lowerThreadPriority ran on this thread (each worker thread has its own copy of this module). */
let loweredThisThread = false;

/** Nice values go from -20 (first served) to 19 (last). */
const NICE_MAX = 19;

/**
 * Makes the calling worker thread `by` nice levels nicer than the process's main thread (relative, so a service
 * started under `nice` keeps its threads' order; a thread already that nice or nicer is left as it is), and gives it
 * `name` (at most 15 characters) as `top -H` and /proc/<pid>/task/<tid>/comm show it. On Linux a thread has a nice
 * value of its own, set through its kernel thread id (from /proc/thread-self); elsewhere, on the main thread, or when
 * the kernel refuses, nothing changes and NODE_DEBUG=thread-priority says why. Threads it starts afterwards inherit
 * its value.
 */
export function lowerThreadPriority(name: string, by: number): void {
  // Module state is per thread: a thread that called this already (a document worker calls it with every job) is done.
  if (loweredThisThread) return;
  loweredThisThread = true;
  if (process.platform !== 'linux') {
    debug('%s: not lowered, a thread has a priority of its own only on Linux (%s here)', name, process.platform);
    return;
  }
  if (isMainThread) {
    debug('%s: not lowered, this is the main thread (the event loop)', name);
    return;
  }
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
    // "<pid>/task/<tid>"
    lower(Number(readlinkSync('/proc/thread-self').split('/').pop()), by);
  } catch (err) {
    debug('%s: not lowered, %s', name, (err as Error).message);
  }
}

/**
 * From the main thread: makes every other thread the process has now `by` levels nicer than it. Called first thing
 * in main.ts, when those are Node's own (see THREAD_NICE.node); the worker threads started later lower themselves.
 */
export function lowerOtherThreads(by: number): void {
  if (process.platform !== 'linux' || !isMainThread) {
    debug('other threads not lowered: only from the main thread on Linux');
    return;
  }
  for (const tid of readdirSync('/proc/self/task').map(Number)) {
    if (tid === process.pid) continue;
    try {
      lower(tid, by);
    } catch (err) {
      // A thread that ended meanwhile, or a kernel that refuses.
      debug('thread %d not lowered, %s', tid, (err as Error).message);
    }
  }
}

function lower(tid: number, by: number): void {
  // The process's id names its main thread.
  const nice = Math.min(NICE_MAX, os.getPriority(process.pid) + by);
  if (nice > os.getPriority(tid)) os.setPriority(tid, nice);
}
