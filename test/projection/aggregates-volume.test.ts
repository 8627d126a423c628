// Subtree aggregates through the volume facade and `bazil du`: the
// background settling (exact within a second of idleness after a burst,
// and after a reopen), random volume operations checked against a walk,
// and bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { boundedShrink } from '../lib/property.js';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { walkAggregates, type Aggregates } from '../../src/volume/aggregates.js';
import { Volume } from '../../src/volume/volume.js';
import { CLI_MAIN } from '../lib/cli-path.js';

async function withHome(fn: (home: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-agg-volume-'));
  try {
    const home = join(dir, 'home');
    const { home: h } = await initHome(home);
    await createVolume(h, 'v').finally(() => h.close());
    await fn(home);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const figures = (a: Aggregates): Omit<Aggregates, 'exact'> => ({ rbytes: a.rbytes, rfiles: a.rfiles, rsubdirs: a.rsubdirs, rctime: a.rctime });

/** Writes a burst across a few directories; returns the bytes written. */
async function burst(v: Volume, files: number, tag: string): Promise<number> {
  let bytes = 0;
  for (let d = 0; d < 4; d++) await v.mkdir(`/${tag}-${d}`);
  for (let i = 0; i < files; i++) {
    const data = Buffer.alloc(100 + i, i % 251);
    await v.writeFile(`/${tag}-${i % 4}/f${i}`, data);
    bytes += data.length;
  }
  return bytes;
}

/** Polls the non-exact read until it says exact; returns the ms it took. */
async function untilExact(v: Volume, path: string, limitMs: number): Promise<{ ms: number; agg: Aggregates }> {
  const started = performance.now();
  for (;;) {
    const agg = await v.aggregates(path);
    const ms = performance.now() - started;
    if (agg.exact) return { ms, agg };
    if (ms > limitMs) assert.fail(`aggregates of ${path} not exact ${Math.round(ms)} ms after the last write`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('after a burst of writes, the root aggregates become exact within 1 s of idleness, without being asked to', async () => {
  await withHome(async (home) => {
    const v = await Volume.open(home, 'v');
    try {
      const bytes = await burst(v, 150, 'b');
      const { ms, agg } = await untilExact(v, '/', 1000);
      assert.deepEqual(figures(agg), figures(await walkAggregates(v, '/')));
      assert.equal(agg.rbytes, bytes);
      assert.equal(agg.rfiles, 150);
      assert.equal(agg.rsubdirs, 4);
      assert.ok(ms < 1000, `settled in ${ms} ms`);
      // A read that claims exactness is right even mid-burst.
      await v.writeFile('/b-0/late', Buffer.alloc(10));
      const during = await v.aggregates('/');
      if (during.exact) assert.equal(during.rbytes, bytes + 10);
      const exact = await v.aggregates('/', { exact: true });
      assert.ok(exact.exact);
      assert.equal(exact.rbytes, bytes + 10);
    } finally {
      await v.close();
    }
  });
});

test('under a steady stream of writes the figures still move on (settling does not wait for idleness forever)', async () => {
  await withHome(async (home) => {
    const v = await Volume.open(home, 'v');
    try {
      await v.mkdir('/s');
      const started = performance.now();
      let written = 0;
      let seen = 0;
      // Writes 10 ms apart: never 50 ms of idleness, so only the longest-wait rule can settle.
      while (performance.now() - started < 2500) {
        await v.writeFile(`/s/f${written++}`, Buffer.alloc(10));
        seen = Math.max(seen, (await v.aggregates('/')).rfiles);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(seen > 0, `the root's figures moved during ${written} writes`);
      assert.equal((await v.aggregates('/', { exact: true })).rfiles, written);
    } finally {
      await v.close();
    }
  });
});

test('dirty marks left by a closed volume are settled after the next open', async () => {
  await withHome(async (home) => {
    const v = await Volume.open(home, 'v');
    let bytes: number;
    try {
      bytes = await burst(v, 60, 'c');
    } finally {
      await v.close();
    }
    const again = await Volume.open(home, 'v');
    try {
      const { agg } = await untilExact(again, '/', 1000);
      assert.equal(agg.rbytes, bytes);
      assert.deepEqual(figures(agg), figures(await walkAggregates(again, '/')));
    } finally {
      await again.close();
    }
  });
});

const SETTLE_CHILD = fileURLToPath(new URL('./aggregates-settle-child.js', import.meta.url));

/** Runs the child until it has written its burst, then SIGKILLs it `afterMs` later (mid-settle, or before or after it). */
function writeThenKill(home: string, count: number, afterMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SETTLE_CHILD, home, 'v', String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('written')) setTimeout(() => child.kill('SIGKILL'), afterMs);
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited on its own: ${err}`))));
  });
}

test('a writer killed by SIGKILL while settling (or before it starts) leaves aggregates that the next open settles right', async () => {
  await withHome(async (home) => {
    const rounds = process.env.BAZIL_SLOW === '1' ? 12 : 4;
    for (let round = 0; round < rounds; round++) await writeThenKill(home, 1500, Math.random() * 250);
    const v = await Volume.open(home, 'v');
    try {
      const { agg } = await untilExact(v, '/', 5000);
      assert.equal(agg.rfiles, rounds * 1500);
      assert.equal(agg.rbytes, rounds * (1500 * 1501) / 2);
      assert.equal(agg.rsubdirs, 20);
      assert.deepEqual(figures(agg), figures(await walkAggregates(v, '/')));
      for (let d = 0; d < 20; d++) assert.deepEqual(figures(await v.aggregates(`/k${d}`)), figures(await walkAggregates(v, `/k${d}`)));
    } finally {
      await v.close();
    }
  });
});

type VOp =
  | { t: 'mkdir'; d: number; n: string }
  | { t: 'write'; d: number; n: string; size: number }
  | { t: 'rename'; from: number; to: number; n: string }
  | { t: 'unlink'; d: number }
  | { t: 'rmdir'; d: number }
  | { t: 'link'; d: number; to: number; n: string }
  | { t: 'chmod'; d: number };

const arbVOp: fc.Arbitrary<VOp> = fc.oneof(
  fc.record({ t: fc.constant('mkdir' as const), d: fc.nat(50), n: fc.constantFrom('a', 'b', 'c') }),
  fc.record({ t: fc.constant('write' as const), d: fc.nat(50), n: fc.constantFrom('x', 'y', 'z'), size: fc.nat(5000) }),
  fc.record({ t: fc.constant('rename' as const), from: fc.nat(50), to: fc.nat(50), n: fc.constantFrom('a', 'x', 'm') }),
  fc.record({ t: fc.constant('unlink' as const), d: fc.nat(50) }),
  fc.record({ t: fc.constant('rmdir' as const), d: fc.nat(50) }),
  fc.record({ t: fc.constant('link' as const), d: fc.nat(50), to: fc.nat(50), n: fc.constantFrom('h', 'x') }),
  fc.record({ t: fc.constant('chmod' as const), d: fc.nat(50) }),
);

/** All paths in the volume, directories and others apart. */
async function paths(v: Volume): Promise<{ dirs: string[]; others: string[] }> {
  const dirs: string[] = [];
  const others: string[] = [];
  const visit = async (p: string): Promise<void> => {
    dirs.push(p);
    for (const e of await v.readdir(p)) {
      const child = p === '/' ? `/${e.name}` : `${p}/${e.name}`;
      if ((await v.getattr(e.id)).kind === 'dir') await visit(child);
      else others.push(child);
    }
  };
  await visit('/');
  return { dirs, others };
}

test('property: after random volume operations (renames across directories, deletes, hard links), every directory\'s exact aggregates equal a walk', async () => {
  await withHome(async (home) => {
    const v = await Volume.open(home, 'v');
    try {
      await fc.assert(fc.asyncProperty(boundedShrink(fc.array(arbVOp, { minLength: 10, maxLength: 40 })), async (ops) => {
        for (const op of ops) {
          const { dirs, others } = await paths(v);
          const dir = (i: number): string => dirs[i % dirs.length]!;
          const join2 = (d: string, n: string): string => (d === '/' ? `/${n}` : `${d}/${n}`);
          // POSIX refusals (EEXIST, ENOTEMPTY, EINVAL...) are part of the workload: the aggregates must not move on them.
          const attempt = (p: Promise<unknown>): Promise<unknown> => p.catch((err: { code?: string }) => {
            if (typeof err.code !== 'string' || !err.code.startsWith('BAZIL_')) throw err;
          });
          switch (op.t) {
            case 'mkdir': await attempt(v.mkdir(join2(dir(op.d), op.n))); break;
            case 'write': await attempt(v.writeFile(join2(dir(op.d), op.n), Buffer.alloc(op.size, 1))); break;
            case 'rename': {
              const all = [...dirs.slice(1), ...others];
              if (all.length > 0) await attempt(v.rename(all[op.from % all.length]!, join2(dir(op.to), op.n)));
              break;
            }
            case 'unlink': if (others.length > 0) await attempt(v.unlink(others[op.d % others.length]!)); break;
            case 'rmdir': if (dirs.length > 1) await attempt(v.rmdir(dirs[1 + (op.d % (dirs.length - 1))]!)); break;
            case 'link': if (others.length > 0) await attempt(v.link(others[op.d % others.length]!, join2(dir(op.to), op.n))); break;
            case 'chmod': if (others.length > 0) await attempt(v.chmod(others[op.d % others.length]!, 0o600)); break;
          }
          const root = await v.aggregates('/');
          if (root.exact) assert.deepEqual(figures(root), figures(await walkAggregates(v, '/')));
        }
        for (const d of (await paths(v)).dirs) {
          const got = await v.aggregates(d, { exact: true });
          assert.ok(got.exact);
          assert.deepEqual(figures(got), figures(await walkAggregates(v, d)), d);
        }
      }), { numRuns: process.env.BAZIL_SLOW === '1' ? 60 : 8 });
    } finally {
      await v.close();
    }
  });
});

test('bad input: missing paths, bad paths, a closed volume, an aborted call; a file reports its own figures', async () => {
  await withHome(async (home) => {
    const v = await Volume.open(home, 'v');
    try {
      await v.writeFile('/f', Buffer.alloc(1234));
      const f = await v.aggregates('/f', { exact: true });
      assert.deepEqual([f.rbytes, f.rfiles, f.rsubdirs, f.exact], [1234, 1, 0, true]);
      await assert.rejects(v.aggregates('/nope'), (err: { code: string; data: { errno: string } }) => err.code === 'BAZIL_NOT_FOUND' && err.data.errno === 'ENOENT');
      await assert.rejects(v.aggregates('/f/below'), (err: { code: string }) => err.code === 'BAZIL_NOT_A_DIRECTORY');
      await assert.rejects(v.aggregates('relative'), (err: { code: string }) => err.code === 'BAZIL_BAD_ARGUMENT');
      await assert.rejects(v.aggregates('/', { signal: AbortSignal.abort() }), (err: { code?: string; name?: string }) => err.code === 'BAZIL_ABORTED' || err.name === 'AbortError');
    } finally {
      await v.close();
    }
    await assert.rejects(v.aggregates('/'), (err: { code: string }) => err.code === 'BAZIL_CLOSED');
  });
});

function bazil(home: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_MAIN, ...args], { timeout: 30_000, env: { ...process.env, BAZIL_HOME: home } });
  return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

test('bazil du: a tree with human sizes, --depth, --exact, --json, and clear errors', async () => {
  await withHome(async (home) => {
    const v = await Volume.open(home, 'v');
    try {
      await v.mkdir('/data');
      await v.mkdir('/data/deep');
      await v.writeFile('/data/deep/big', Buffer.alloc(3 * 1024 * 1024, 1));
      await v.writeFile('/data/small', Buffer.alloc(100));
      await v.mkdir('/docs');
    } finally {
      await v.close();
    }
    const json = bazil(home, 'du', 'v', '--exact', '--json', '--depth', '2');
    assert.equal(json.status, 0, json.stderr);
    const tree = JSON.parse(json.stdout) as { path: string; rbytes: number; rfiles: number; rsubdirs: number; exact: boolean; rctime: string; children: { path: string; rbytes: number; children?: unknown[] }[] };
    assert.deepEqual([tree.path, tree.rbytes, tree.rfiles, tree.rsubdirs, tree.exact], ['/', 3 * 1024 * 1024 + 100, 2, 3, true]);
    assert.match(tree.rctime, /^\d+$/);
    assert.deepEqual(tree.children.map((c) => [c.path, c.rbytes]), [['/data', 3 * 1024 * 1024 + 100], ['/docs', 0]]);
    assert.equal(tree.children[0]!.children!.length, 1);

    const human = bazil(home, 'du', 'v:/data', '--exact');
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stdout, /^ +3\.1M +2 files +1 dirs +\/data\n +3\.0M +1 files +0 dirs +└── deep\n$/);
    assert.equal(bazil(home, 'du', 'v', '--exact', '-d', '0').stdout.trim().split('\n').length, 1);

    const missing = bazil(home, 'du', 'v:/nope', '--json');
    assert.equal(missing.status, 1);
    assert.equal((JSON.parse(missing.stderr) as { code: string }).code, 'BAZIL_NOT_FOUND');
    assert.equal(bazil(home, 'du', 'v', '--depth', '-1').status, 2);
    assert.equal(bazil(home, 'du', 'v', '--depth', 'x').status, 2);
    assert.equal(bazil(home, 'du', 'nosuchvolume').status, 1);
  });
});
