// Deferred metadata durability (Volume.deferMetadataDurability, what the
// mount turns on): metadata commits resolve before their events are
// durable, and become durable with the next content commit, fsync, sync()
// or the interval. A power cut (the fault layer, in a child process) must
// keep everything acknowledged as durable, and may drop exactly the deferred
// steps after it; the projection, which saw the deferred events, is then
// ahead of the log and must be rebuilt at open, never trusted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { initHome, openHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume } from '../../src/volume/volume.js';

const CHILD = fileURLToPath(new URL('./deferred-durability-child.js', import.meta.url));
/** Long enough that the interval never fires during a scenario, unless the scenario waits for it. */
const LONG_MS = 60_000;

function runChild(home: string, volume: string, scenario: string, deferMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CHILD, home, volume, scenario, String(deferMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    proc.on('error', reject);
    proc.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited with ${code}:\n${out}\n${err}`))));
  });
}

async function exists(v: Volume, path: string): Promise<boolean> {
  try {
    await v.stat(path);
    return true;
  } catch (err) {
    if (isBazilError(err, ErrorCodes.NOT_FOUND)) return false;
    throw err;
  }
}

async function withHome(fn: (home: string, newVolume: (name: string) => Promise<void>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-deferred-'));
  const home = join(dir, 'home');
  try {
    await (await initHome(home)).home.close();
    await fn(home, async (name) => {
      const h = await openHome(home);
      await createVolume(h, name).finally(() => h.close());
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a scenario to its power cut, reopens, and checks every acknowledged path is there and every deferred one is not. */
async function cutAndCheck(home: string, volume: string, scenario: string, deferMs: number): Promise<void> {
  const out = await runChild(home, volume, scenario, deferMs);
  const acked = [...out.matchAll(/^ack (\S+)$/gm)].map((m) => m[1]!);
  const deferred = [...out.matchAll(/^deferred (?:unlink )?(\S+)$/gm)].map((m) => ({ path: m[1]!, unlink: m[0].includes('unlink') }));
  assert.ok(acked.length > 0, out);
  const v = await Volume.open(home, volume);
  try {
    for (const path of acked) {
      // An acknowledged path later unlinked by a deferred step is still there: the unlink was lost.
      assert.ok(await exists(v, path), `${path} was acknowledged durable before the cut, and is gone after it`);
    }
    for (const d of deferred) {
      if (!d.unlink) assert.equal(await exists(v, d.path), false, `${d.path} was never synced, yet survived a power cut: the projection was trusted over the log`);
    }
    const report = await v.fsck();
    assert.deepEqual(report.problems, [], 'fsck is clean');
    // The volume takes writes after the cut.
    await v.mkdir('/after-reopen');
    assert.ok(await exists(v, '/after-reopen'));
  } finally {
    await v.close();
  }
}

test('deferred metadata: sync() makes what came before durable; what came after is lost by a power cut, and the projection does not keep it', { timeout: 60_000 }, async () => {
  await withHome(async (home, newVolume) => {
    await newVolume('v');
    await cutAndCheck(home, 'v', 'sync', LONG_MS);
  });
});

test('deferred metadata: fsync of a clean new file makes its creation durable', { timeout: 60_000 }, async () => {
  await withHome(async (home, newVolume) => {
    await newVolume('v');
    await cutAndCheck(home, 'v', 'fsync-clean-file', LONG_MS);
  });
});

test('deferred metadata: a content commit makes the metadata before it durable, and a deferred unlink after it may be lost', { timeout: 60_000 }, async () => {
  await withHome(async (home, newVolume) => {
    await newVolume('v');
    await cutAndCheck(home, 'v', 'content-commit', LONG_MS);
  });
});

test('deferred metadata: the interval makes a deferred change durable without any sync', { timeout: 60_000 }, async () => {
  await withHome(async (home, newVolume) => {
    await newVolume('v');
    await cutAndCheck(home, 'v', 'timer', 50);
  });
});

test('deferMetadataDurability refuses bad intervals; null makes commits durable again', async () => {
  await withHome(async (home, newVolume) => {
    await newVolume('v');
    const v = await Volume.open(home, 'v');
    try {
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        assert.throws(() => v.deferMetadataDurability(bad), (err: unknown) => isBazilError(err, ErrorCodes.BAD_ARGUMENT), String(bad));
      }
      v.deferMetadataDurability(LONG_MS);
      await v.mkdir('/a');
      v.deferMetadataDurability(null);
      await v.mkdir('/b');
      assert.ok(await exists(v, '/a') && await exists(v, '/b'));
    } finally {
      await v.close();
    }
    // close() syncs what was deferred: both are there after a clean reopen.
    const again = await Volume.open(home, 'v');
    try {
      assert.ok(await exists(again, '/a') && await exists(again, '/b'));
    } finally {
      await again.close();
    }
  });
});
