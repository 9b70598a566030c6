// Loaded into the proxy process by the soak test (`node --import ./scripts/soak-probe.mjs`): every
// second it reports memory and the event loop's worst delay over that second to the parent
// through the IPC channel. It measures from inside because only there is the loop visible.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Nanoseconds the main thread spent runnable but waiting for a CPU (Linux schedstat): a loop
 * delay that other processes on the machine caused, not this one's own work.
 */
function runQueueNs() {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

if (typeof process.send === 'function') {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let cpu = process.cpuUsage();
  let waited = runQueueNs();
  const timer = setInterval(() => {
    const memory = process.memoryUsage();
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const waitedNow = runQueueNs();
    const runQueueMs = (waitedNow - waited) / 1e6;
    waited = waitedNow;
    process.send?.({
      type: 'soak-probe',
      at: Date.now(),
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      external: memory.external,
      // The histogram's max, in ms, minus the sampling resolution that it always includes.
      loopDelayMaxMs: Math.max(0, delay.max / 1e6 - 10),
      loopDelayP99Ms: Math.max(0, delay.percentile(99) / 1e6 - 10),
      // CPU time used in that second, in ms (1000 = one core busy all the time).
      cpuMs: (used.user + used.system) / 1000,
      runQueueMs,
    });
    delay.reset();
  }, 1000);
  timer.unref();
  process.channel?.unref();
}
