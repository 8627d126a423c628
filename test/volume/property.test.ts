// Property test of the volume facade (issue 3, "Property tests"): random
// sequences of Volume calls (mkdir, writeFile, symlink, link, rename with
// overwrite and directories, unlink, rmdir, chmod, chown, utimens, xattrs,
// reflink copies of files and trees (the model deep-copies), and calls that must fail: bad paths, missing parents, cycles, bad
// arguments) agree with an in-memory model (model.ts) after every step:
// the errno of each failing call, the tree, kinds, modes, owners, sizes,
// contents, link counts and hard-link groups, xattrs, symlink targets and
// the time rules. Then a rebuild gives a byte-identical dump, and so does a
// close and reopen; fsck is clean.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { boundedShrink } from '../lib/property.js';
import { initHome, openHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume } from '../../src/volume/volume.js';
import { TimeChecker, VolumeModel, describeOp, diffListings, listVolume, runOp, type VolOp } from './model.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const RUNS = SLOW ? 100 : 36;
const MAX_OPS = SLOW ? 80 : 40;
const IDS = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

const KINDS = [
  'mkdir', 'mkdir', 'mkdir', 'writeFile', 'writeFile', 'writeFile', 'symlink', 'link', 'link', 'rename', 'rename', 'rename',
  'unlink', 'rmdir', 'chmod', 'chown', 'utimens', 'setxattr', 'setxattr', 'removexattr', 'reflink', 'reflink', 'reflink',
] as const;
const NAMES = ['a', 'b', 'c', 'é', 'ü日'];
/** Paths every call refuses before looking anything up, with the errno. */
const BAD_PATHS: [string, string][] = [
  ['relative', 'EINVAL'], ['', 'EINVAL'], ['/a/../b', 'EINVAL'], ['/a/./b', 'EINVAL'], ['/a//b', 'EINVAL'], ['/x\0y', 'EINVAL'],
  [`/${'n'.repeat(256)}`, 'ENAMETOOLONG'], [`/${'é'.repeat(128)}`, 'ENAMETOOLONG'], [`/${'a/'.repeat(2100)}a`, 'ENAMETOOLONG'],
];

interface PathSeed {
  /** Picks a node of the model's tree. */
  i: number;
  /** The name appended when the call wants a new path. */
  name: number;
  /** 0 (one time in five) gives the other kind of path than the call wants: a new one where it needs one that exists, and so on. */
  flip: number;
}

interface Seed {
  kind: (typeof KINDS)[number];
  p: PathSeed;
  q: PathSeed;
  n: number;
  bytes: Uint8Array;
  big: boolean;
  /** Replaces the first path with a bad one. */
  bad: number | null;
  /** Passes an argument the facade must refuse (a mode out of range, nothing to change, an empty name). */
  invalid: boolean;
}

const arbPath: fc.Arbitrary<PathSeed> = fc.record({ i: fc.nat(), name: fc.nat(NAMES.length - 1), flip: fc.nat(4) });
const arbSeed: fc.Arbitrary<Seed> = fc.record({
  kind: fc.constantFrom(...KINDS),
  p: arbPath,
  q: arbPath,
  n: fc.nat(0o7777),
  bytes: fc.uint8Array({ maxLength: 48 }),
  big: fc.nat(9).map((n) => n === 0),
  bad: fc.tuple(fc.nat(11), fc.nat(BAD_PATHS.length - 1)).map(([r, k]) => (r === 0 ? k : null)),
  invalid: fc.nat(15).map((n) => n === 0),
});

/** What a call wants of a path: a new name, or an existing node of some kind. */
type Want = 'new' | 'any' | 'dir' | 'nondir';

/**
 * A path of the kind the call wants, picked from the model's tree; one
 * time in five (flip 0) a path of another kind (the root, a name under a
 * file, one that may not exist), which the call must refuse as POSIX does.
 */
function pathOf(model: VolumeModel, s: PathSeed, want: Want): string {
  const listed = model.list();
  const below = (base: string): string => (base === '/' ? `/${NAMES[s.name]}` : `${base}/${NAMES[s.name]}`);
  if (s.flip === 0) {
    const base = listed[s.i % listed.length]!.path;
    return want === 'new' || s.i % 3 === 0 ? below(base) : s.i % 3 === 1 ? '/' : base;
  }
  if (want === 'new') {
    const dirs = listed.filter((l) => l.kind === 'dir');
    return below(dirs[s.i % dirs.length]!.path);
  }
  const fits = listed.filter((l) => l.path !== '/' && (want === 'any' || (want === 'dir') === (l.kind === 'dir')));
  return fits.length === 0 ? below('/') : fits[s.i % fits.length]!.path;
}

/** Content of a "big" write: several chunks (the chunker's minimum is 16 KiB), derived from the seed's bytes. */
function bigContent(seed: Uint8Array, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let at = 0, k = 0; at < size; k++) {
    const block = createHash('sha256').update(seed).update(String(k)).digest();
    at += block.copy(out, at);
  }
  return out;
}

/** The call a seed stands for, against the model's current tree. */
function opOf(model: VolumeModel, s: Seed): VolOp {
  const want: Want = s.kind === 'mkdir' || s.kind === 'symlink' ? 'new'
    : s.kind === 'writeFile' ? (s.n % 3 === 0 ? 'nondir' : 'new')
      : s.kind === 'link' || s.kind === 'unlink' ? 'nondir' : s.kind === 'rmdir' ? 'dir' : 'any';
  const p = s.bad === null ? pathOf(model, s.p, want) : BAD_PATHS[s.bad]![0];
  // A link makes a new name; a rename goes to a new name or over an existing node, half and half.
  const q = pathOf(model, s.q, s.kind === 'link' || (s.kind === 'rename' && s.q.i % 2 === 0) ? 'new' : 'any');
  const xattrName = `user.${NAMES[s.n % NAMES.length]}`;
  switch (s.kind) {
    case 'mkdir': return { op: 'mkdir', path: p, mode: s.invalid ? 0o10000 + s.n : s.n & 0o7777, ...(s.n % 3 === 0 ? { uid: s.n, gid: s.n + 1 } : {}), ...(s.n % 4 === 0 ? { mtimeNs: BigInt(s.n) * 1_000_000_007n } : {}) };
    case 'writeFile': return { op: 'writeFile', path: p, data: s.big ? bigContent(s.bytes, 40_000 + s.n * 20) : s.bytes, ...(s.n % 2 === 0 ? { mode: s.n & 0o777 } : {}) };
    case 'symlink': return { op: 'symlink', target: s.invalid ? '' : `../t/${s.n}`, path: p };
    case 'link': return { op: 'link', from: p, to: q };
    case 'reflink': return { op: 'reflink', from: p, to: s.q.i % 5 === 0 ? q : pathOf(model, s.q, 'new') };
    case 'rename': return { op: 'rename', from: p, to: q };
    case 'unlink': return { op: 'unlink', path: p };
    case 'rmdir': return { op: 'rmdir', path: p };
    case 'chmod': return { op: 'chmod', path: p, mode: s.invalid ? 0o10000 : s.n };
    case 'chown': return s.invalid ? { op: 'chown', path: p, uid: null, gid: null } : { op: 'chown', path: p, uid: s.n % 2 ? s.n : null, gid: s.n % 3 ? s.n + 7 : null };
    case 'utimens': {
      if (s.invalid) return { op: 'utimens', path: p, atime: null, mtime: null };
      const spec = (k: number): bigint | 'now' | null => (k === 0 ? null : k === 1 ? 'now' : BigInt(s.n) * 999_999_937n + BigInt(k));
      const a = s.n % 3;
      const m = a === 0 ? 1 + ((s.n >> 2) % 2) : (s.n >> 2) % 3;
      return { op: 'utimens', path: p, atime: spec(a), mtime: spec(m) };
    }
    case 'setxattr': return { op: 'setxattr', path: p, name: s.invalid ? '' : xattrName, value: s.bytes };
    case 'removexattr': {
      const existing = model.lookup(p)?.xattrs ?? [];
      return { op: 'removexattr', path: p, name: existing.length > 0 && s.n % 4 !== 0 ? existing[s.n % existing.length]! : xattrName };
    }
  }
}

/** Lists the volume and checks it against the model; throws with every difference. */
async function agree(v: Volume, model: VolumeModel, times: TimeChecker | null, when: string): Promise<void> {
  const { listed, times: attrs } = await listVolume(v);
  const problems = diffListings(listed, model.list());
  if (times !== null) problems.push(...times.check(model, attrs));
  assert.deepEqual(problems, [], `${when}:\n${problems.join('\n')}`);
}

test('property: random Volume calls agree with the model after every step, after rebuild and after reopening', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-volume-prop-'));
  const homeDir = join(dir, 'home');
  await (await initHome(homeDir)).home.close();
  let runs = 0;
  let steps = 0;
  let refused = 0;
  const outcomes = new Map<string, number>();
  const started = performance.now();
  try {
    await fc.assert(fc.asyncProperty(boundedShrink(fc.array(arbSeed, { minLength: 10, maxLength: MAX_OPS, size: 'max' })), async (seeds) => {
      const name = `p${runs++}`;
      const home = await openHome(homeDir);
      await createVolume(home, name).finally(() => home.close());
      let v = await Volume.open(homeDir, name);
      try {
        const root = await v.stat('/');
        const model = new VolumeModel(root.mode, root.uid, root.gid);
        const times = new TimeChecker();
        await agree(v, model, times, 'a new volume');
        const history: string[] = [];
        for (const seed of seeds) {
          const op = opOf(model, seed);
          const expected = model.apply(op, IDS);
          // A bad path is refused before anything is looked up, whatever the call.
          if (seed.bad !== null) assert.equal(expected, BAD_PATHS[seed.bad]![1], `the model on ${describeOp(op)}`);
          const got = await runOp(v, op);
          history.push(`${describeOp(op)} → ${got ?? 'ok'}`);
          const when = `after\n  ${history.join('\n  ')}`;
          assert.equal(got, expected, `errno of the last call ${when}`);
          if (expected !== null) refused++;
          const key = `${op.op} ${got ?? 'ok'}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
          steps++;
          // Every other run lists the tree only at the end: listing materialises every copy at once, and
          // these runs keep copies pending while later calls change their sources, their copies and both.
          if (runs % 2 === 1) await agree(v, model, times, when);
        }
        await agree(v, model, runs % 2 === 1 ? times : null, `at the end, after\n  ${history.join('\n  ')}`);
        const dump = await v.dump();
        await v.rebuild();
        assert.ok((await v.dump()).equals(dump), 'the dump after rebuild differs');
        await agree(v, model, runs % 2 === 1 ? times : null, 'after rebuild');
        await v.close();
        v = await Volume.open(homeDir, name);
        assert.ok((await v.dump()).equals(dump), 'the dump after reopening differs');
        await agree(v, model, runs % 2 === 1 ? times : null, 'after reopening');
        const report = await v.fsck();
        assert.deepEqual(report.problems, []);
      } finally {
        await v.close();
      }
    }), {
      numRuns: RUNS,
      // Each run builds a volume, so shrinking would take minutes; the failure names every call made, and the seed replays it.
      endOnFailure: true,
    });
    t.diagnostic(`${runs} runs, ${steps} calls (${refused} refused with an errno) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    t.diagnostic([...outcomes].sort().map(([k, n]) => `${k}: ${n}`).join(', '));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
