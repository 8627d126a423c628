// fsx through the mount: a seeded random sequence of writes, reads,
// truncates, renames and fsyncs from a child process (fsx-child.ts),
// checked byte for byte against an in-memory model; the volume is
// unmounted and mounted again in the middle, and the second half starts by
// checking every file against the model. BAZIL_SLOW=1 runs longer
// sequences on larger files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHome, mount, requireFuse } from './mount-harness.js';

const CHILD = fileURLToPath(new URL('./fsx-child.js', import.meta.url));
const SLOW = process.env.BAZIL_SLOW === '1';
const OPS = SLOW ? 5000 : 400;
const MAX_SIZE = SLOW ? 8 * 1024 * 1024 : 512 * 1024;
const SEEDS = SLOW ? [1, 2, 3, 4] : [Number(process.env.BAZIL_FSX_SEED ?? 20261126)];

function fsx(dir: string, seed: number, state: string, resume: boolean): Promise<{ ok: boolean; error?: string; log?: string[] }> {
  const args = [CHILD, dir, String(seed), String(OPS), String(MAX_SIZE), state, ...(resume ? ['--resume'] : [])];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: SLOW ? 1_200_000 : 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as { ok: boolean; error?: string; log?: string[] });
      } catch {
        resolve({ ok: false, error: `fsx child failed: ${err?.message ?? ''} ${stderr}` });
      }
    });
  });
}

for (const seed of SEEDS) {
  test(`fsx seed ${seed}: ${OPS} ops, remount, ${OPS} more, against a model`, { timeout: SLOW ? 3_000_000 : 120_000 }, async () => {
    await requireFuse();
    const h = await makeHome();
    try {
      const state = join(h.dir, 'model.json');
      let m = await mount(h, 'v');
      try {
        await mkdir(join(m.dir, 'fsx'));
        const first = await fsx(join(m.dir, 'fsx'), seed, state, false);
        assert.ok(first.ok, `first half: ${first.error}\n${(first.log ?? []).join('\n')}`);
      } finally {
        await m.unmount();
      }
      m = await mount(h, 'v');
      try {
        const second = await fsx(join(m.dir, 'fsx'), seed, state, true);
        assert.ok(second.ok, `after the remount: ${second.error}\n${(second.log ?? []).join('\n')}`);
      } finally {
        await m.unmount();
      }
      const fsck = await h.bazil(['fsck', 'v']);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    } finally {
      await h.cleanup();
    }
  });
}
