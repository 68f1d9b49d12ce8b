// Preloaded into the service bench:calls starts (`node [--import tsx] --import bench/exit-with-parent.mjs <main>`):
// its stdin is a pipe from the benchmark, so when the benchmark dies however it dies (even SIGKILL), the pipe closes
// and the service is asked to stop as an operator would ask it (SIGTERM: graceful shutdown), instead of living on.
import process from 'node:process';
process.stdin.resume();
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
// Only a watcher: it must not keep a service that is otherwise done alive.
process.stdin.unref();
