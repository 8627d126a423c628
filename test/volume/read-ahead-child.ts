// Child process of read-ahead-worker.test.ts: reads /big of volume v in the
// home given as argv[2] sequentially through a handle, as the mount does,
// twice, and prints the content's SHA-256 of each pass and the
// read-ahead's counts as JSON. A
// child, so that BAZIL_NO_NATIVE (read when the modules load and when the
// worker starts) can differ from the test's own process.

import { createHash } from 'node:crypto';
import { Volume } from '../../src/volume/volume.js';
import { readAheadCounts } from '../../src/volume/read-ahead.js';

const homeDir = process.argv[2];
if (homeDir === undefined) throw new Error('usage: read-ahead-child HOME');
const REQUEST = 128 * 1024;
const v = await Volume.open(homeDir, 'v');
try {
  // Two passes: a worker that starts slowly (a loaded machine) has the
  // whole second one; each pass must give the file.
  const sha256: string[] = [];
  for (let pass = 0; pass < 2; pass++) {
    const h = await v.open('/big', { read: true });
    const hash = createHash('sha256');
    const out = Buffer.alloc(REQUEST);
    for (let at = 0; ; at += REQUEST) {
      // A kernel round trip between requests, in which the worker gets ahead.
      await new Promise((resolve) => setTimeout(resolve, 1));
      const n = await h.readInto(out, at);
      hash.update(out.subarray(0, n));
      if (n < REQUEST) break;
    }
    await h.release();
    sha256.push(hash.digest('hex'));
  }
  process.stdout.write(`${JSON.stringify({ sha256, counts: readAheadCounts() })}\n`);
} finally {
  await v.close();
}
