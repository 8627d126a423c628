// The background settler under a stream of writes that dirty the directory
// it just settled: a run must stop rather than recompute that directory
// again between every two writes (which made every create in a directory
// of ~7,000 entries wait ~70 ms for a whole recomputation), and it must
// still settle everything once the writes stop.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackgroundSettler } from '../../src/volume/aggregates.js';
import type { ProjectionStore } from '../../src/projection/store.js';

test('a settling run stops when writes re-dirty its directory as fast as it settles, and settles once they stop', async () => {
  let slices = 0;
  let writing = true;
  // Each slice recomputes the one dirty directory; while writes stream in, they have re-dirtied it by the time the slice reports.
  const projection = {
    async settleAggregates(): Promise<number> {
      slices++;
      await sleep(5);
      return writing ? 1 : 0;
    },
  } as unknown as ProjectionStore;
  let queue: Promise<unknown> = Promise.resolve();
  const serialise = <T>(work: () => Promise<T>): Promise<T> => {
    const r = queue.then(work, work);
    queue = r.catch(() => undefined);
    return r;
  };
  const settler = new BackgroundSettler(projection, serialise);
  const writer = (async () => {
    while (writing) {
      await serialise(async () => undefined);
      settler.poke();
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  // Past SETTLE_MAX_WAIT_MS (1 s) of steady writes a run starts anyway; the next may not start within the following second.
  await sleep(1600);
  const during = slices;
  writing = false;
  await writer;
  assert.ok(during >= 1, 'a run started under the steady stream of writes');
  assert.ok(during <= 4, `${during} slices ran while writes streamed in (a run looped instead of stopping)`);
  settler.poke();
  await sleep(200);
  assert.ok(slices > during, 'settling resumed once the writes stopped');
  await settler.stop();
});
