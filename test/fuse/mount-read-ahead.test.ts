// Sequential reads through a real mount after a remount, the path the
// read-ahead (src/volume/read-ahead.ts) speeds up: whole-file reads with
// the kernel's concurrent requests, and a reader that meets a write made
// through another descriptor just ahead of it. The mount is served by the
// daemon (`bazil mount`); this process and its children only read and write.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeHome, mount, requireFuse, sh } from './mount-harness.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const MIB = 1024 * 1024;
const SIZE = (SLOW ? 256 : 16) * MIB;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// Reads the file in 128 KiB steps; at 1 MiB, writes 100,000 bytes at 2 MiB + 12,345 through a
// second descriptor, then reads on: prints the sha256 of what it read.
const READ_WRITE_PY = String.raw`
import hashlib, os, sys
path, patch = sys.argv[1], open(sys.argv[2], 'rb').read()
r = os.open(path, os.O_RDONLY)
h = hashlib.sha256()
at = 0
while True:
    b = os.pread(r, 131072, at)
    if not b: break
    h.update(b)
    at += len(b)
    if at == 1048576:
        w = os.open(path, os.O_WRONLY)
        os.pwrite(w, patch, 2 * 1048576 + 12345)
        os.close(w)
os.close(r)
print(h.hexdigest())
`;

test('a file read through a remounted mount, whole and with a write just ahead of the reader, reads right', { timeout: SLOW ? 600_000 : 120_000 }, async () => {
  await requireFuse();
  const h = await makeHome();
  try {
    const data = randomBytes(SIZE);
    const src = join(h.dir, 'src.bin');
    await writeFile(src, data);
    let m = await mount(h, 'v');
    try {
      await sh('dd', [`if=${src}`, `of=${join(m.dir, 'big')}`, 'bs=1M', 'conv=fsync', 'status=none']);
      await sh('cp', [src, join(m.dir, 'big2')]);
    } finally {
      await m.unmount();
    }
    m = await mount(h, 'v');
    try {
      // dd's 1 MiB reads: the kernel asks 128 KiB at a time, several in flight.
      const out = join(h.dir, 'out.bin');
      await sh('dd', [`if=${join(m.dir, 'big')}`, `of=${out}`, 'bs=1M', 'status=none']);
      assert.equal(sha(await readFile(out)), sha(data), 'the whole file, read with dd');
      // Two readers of one file at once, each sequential.
      const [a, b] = await Promise.all([readFile(join(m.dir, 'big')), sh('sha256sum', [join(m.dir, 'big')])]);
      assert.equal(sha(a), sha(data));
      assert.equal(b.split(' ')[0], sha(data));
      // A write through another descriptor, ahead of a sequential reader, is what it reads.
      const patch = randomBytes(100_000);
      const expect = Buffer.from(data);
      patch.copy(expect, 2 * MIB + 12_345);
      const patchFile = join(h.dir, 'patch.bin');
      await writeFile(patchFile, patch);
      const got = (await sh('python3', ['-c', READ_WRITE_PY, join(m.dir, 'big2'), patchFile])).trim();
      assert.equal(got, sha(expect), 'the reader saw the write made just ahead of it');
      assert.equal(sha(await readFile(join(m.dir, 'big2'))), sha(expect), 'and so does a later read');
    } finally {
      await m.unmount();
    }
  } finally {
    await h.cleanup();
  }
});
