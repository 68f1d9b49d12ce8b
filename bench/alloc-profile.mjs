// Preloaded into the service by `bench:calls --alloc-profile DIR`: samples what the service allocates while the
// measured calls run, garbage included (V8's sampling heap profiler with the objects minor and major GCs collected
// kept): where the bytes come from that the young generation's scavenges then copy or free. The bench sends SIGUSR2
// when the calls start and again when they end; the profile is written to DIR as alloc-<pid>.heapprofile (open it in
// Chrome DevTools' Memory tab).
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const dir = process.env.BENCH_ALLOC_PROFILE_DIR;
const session = new Session();
session.connect();
const post = (method, params) =>
  new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
let sampling = false;
process.on('SIGUSR2', () => {
  sampling = !sampling;
  const step = sampling
    ? post('HeapProfiler.enable').then(() =>
        post('HeapProfiler.startSampling', {
          samplingInterval: 16384,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        }),
      )
    : post('HeapProfiler.stopSampling').then(({ profile }) =>
        writeFileSync(path.join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(profile)),
      );
  step.catch((err) => process.stderr.write(`alloc-profile: ${err}\n`));
});
