// The volume issue's power-cut acceptance: "a power cut (the arena issue's
// fault layer) at random points of a volume workload loses nothing whose
// fsync or sync() returned".
//
// A child process (power-cut-child.ts) runs a seeded workload (writeFile,
// mkdir, rename over files, unlink, rmdir, symlink, link, chmod, setxattr,
// tree imports) on a volume whose arenas sit on the fault layer, and the
// layer cuts the power at one I/O op: it puts the arena files back to what
// was durable and the child exits without closing anything, as a dead
// machine would. The projection (LevelDB) is not on the fault layer and
// keeps everything it was given, which is the worst case for it: it may
// only ever reflect events that were durable. Then the volume reopens on
// the real file system and must hold exactly the state after the
// acknowledged steps, or after the step in flight too (durable but not yet
// acknowledged); a tree import in flight may be partly there, but every
// file present in it has its source's bytes. fsck must be clean, and the
// volume must take new writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FaultFileSystem } from '../../arena/fault-fs.js';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { initHome, openHome, VOLUMES_DIR } from '../../src/home/home.js';
import { readVolumeIndex } from '../../src/home/volume-index.js';
import { ARENAS_DIR, createVolume } from '../../src/home/volumes.js';
import { PROJECTION_DIR, Volume } from '../../src/volume/volume.js';
import { describeOp, diffListings, listVolume, sha, type Listed } from './model.js';
import { makeImportSources, planWorkload, prng, readLocalTree, type Step } from './power-cut-workload.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const CUTS = SLOW ? 200 : 20;
const STEPS = SLOW ? 60 : 30;
const IMPORTS = 2;
const SEED = Number(process.env.BAZIL_TEST_SEED ?? Date.now() % 1_000_000);
const CHILD = fileURLToPath(new URL('./power-cut-child.js', import.meta.url));
const IDS = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

interface ChildRun {
  acked: number;
  /** The step that failed (-1: the open), or null when every step ran. */
  failed: number | null;
  ops: number | null;
  out: string;
}

function runChild(home: string, volume: string, sources: string, cutAt: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CHILD, home, volume, sources, String(SEED), String(STEPS), String(cutAt)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`child exited with ${code}:\n${out}\n${err}`));
        return;
      }
      const acks = [...out.matchAll(/^ack (\d+)$/gm)].map((m) => Number(m[1]));
      const fail = /^fail (-?\d+)/m.exec(out);
      const ops = /^ops (\d+)$/m.exec(out);
      resolve({ acked: acks.length, failed: fail === null ? null : Number(fail[1]), ops: ops === null ? null : Number(ops[1]), out });
    });
  });
}

/** Listings without the subtree at `path`. */
function without(list: readonly Listed[], path: string): Listed[] {
  return list.filter((l) => l.path !== path && !l.path.startsWith(`${path}/`));
}

type Verdict = { ok: true; how: string } | { ok: false; problems: string[] };

/**
 * Whether the reopened volume's listing is an allowed outcome: the state
 * after the acknowledged steps, or after the step in flight as well, or
 * (an import in flight) the first with part of the import, every file of
 * which is complete. A new file written in flight and present but empty
 * is reported apart (`placeholder`).
 */
function judge(listed: Listed[], states: Listed[][], steps: Step[], run: ChildRun): Verdict & { placeholder?: string } {
  const before = states[run.acked]!;
  if (diffListings(listed, before).length === 0) return { ok: true, how: 'the step in flight left nothing' };
  const inFlight = run.failed !== null && run.failed >= 0 ? steps[run.failed] : undefined;
  if (inFlight === undefined) return { ok: false, problems: diffListings(listed, before) };
  const after = states[run.acked + 1]!;
  if (diffListings(listed, after).length === 0) return { ok: true, how: 'the step in flight was durable' };
  if (inFlight.kind === 'import') {
    // Outside the import, the tree is as before it, but for the parent's link count once the import's top is there.
    const top = listed.some((l) => l.path === inFlight.path);
    const rest = diffListings(without(listed, inFlight.path), without(top ? after : before, inFlight.path));
    const want = new Map(after.map((l) => [l.path, l]));
    for (const l of listed) {
      if (l.path !== inFlight.path && !l.path.startsWith(`${inFlight.path}/`)) continue;
      const w = want.get(l.path);
      if (w === undefined) rest.push(`${l.path}: not in the import's source`);
      else if (l.kind !== w.kind || l.content !== w.content || l.target !== w.target || l.mode !== w.mode) {
        rest.push(`${l.path}: ${l.kind} ${l.mode.toString(8)} ${l.content ?? l.target ?? ''} (${l.size} bytes), the source has ${w.kind} ${w.mode.toString(8)} ${w.content ?? w.target ?? ''} (${w.size} bytes)`);
      }
    }
    return rest.length === 0 ? { ok: true, how: 'part of the import in flight was durable' } : { ok: false, problems: rest };
  }
  const path = inFlight.op.op === 'writeFile' ? inFlight.op.path : null;
  if (path !== null && !before.some((l) => l.path === path)) {
    const empty = after.map((l) => (l.path === path ? { ...l, size: 0, content: sha(Buffer.alloc(0)) } : l));
    if (diffListings(listed, empty).length === 0) {
      return { ok: true, how: 'the new file in flight is present and empty', placeholder: path };
    }
  }
  return { ok: false, problems: [`neither the state before the step in flight nor after it (${describeOp(inFlight.kind === 'op' ? inFlight.op : inFlight)}); against after:`, ...diffListings(listed, after)] };
}

test('a power cut at random I/O ops of a volume workload loses no acknowledged write, leaves no torn file, and fsck is clean', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-power-cut-'));
  const home = join(dir, 'home');
  const sources = join(dir, 'src');
  try {
    await (await initHome(home)).home.close();
    await makeImportSources(sources, IMPORTS, SEED);
    const trees = [];
    for (let k = 0; k < IMPORTS; k++) trees.push(await readLocalTree(join(sources, `i${k}`)));
    const { steps, states } = planWorkload(SEED, STEPS, trees, IDS);

    const newVolume = async (name: string): Promise<void> => {
      const h = await openHome(home);
      await createVolume(h, name).finally(() => h.close());
    };

    // One run without a cut: how many I/O ops the workload does, and that it ends where the model does.
    await newVolume('whole');
    const started = performance.now();
    const whole = await runChild(home, 'whole', sources, 0);
    const childMs = performance.now() - started;
    assert.equal(whole.failed, null, whole.out);
    assert.equal(whole.acked, steps.length);
    const total = whole.ops!;
    {
      const v = await Volume.open(home, 'whole');
      try {
        const problems = diffListings((await listVolume(v)).listed, states[steps.length]!);
        assert.deepEqual(problems, [], `the workload without a cut:\n${problems.join('\n')}`);
      } finally {
        await v.close();
      }
    }
    t.diagnostic(`seed ${SEED}: ${steps.length} steps, ${total} I/O ops on the fault layer, a run takes ${childMs.toFixed(0)} ms; cutting at ${CUTS} points`);

    const rand = prng(SEED);
    const problems: string[] = [];
    const placeholders: string[] = [];
    const outcomes = new Map<string, number>();
    for (let i = 0; i < CUTS; i++) {
      // Spread over the whole run: one cut in each of CUTS equal slices of the ops.
      const cutAt = 1 + Math.floor(((i + rand()) * total) / CUTS);
      const name = `cut${i}`;
      await newVolume(name);
      const run = await runChild(home, name, sources, cutAt);
      const label = `cut at op ${cutAt} (seed ${SEED}): ${run.acked} steps acknowledged, ${run.failed === null ? 'none failed' : `step ${run.failed} failed`}`;
      // The op count varies a little from run to run (group commit shares fsyncs by timing): a cut past the end never comes.
      const expected = run.failed === null ? { ...run, acked: steps.length } : run;
      if (run.failed === null && (run.ops === null || run.ops >= cutAt)) {
        problems.push(`${label}: the cut at op ${cutAt} never happened, yet the run did ${run.ops} ops`);
        continue;
      }
      // A quarter of the time the projection is lost as well (LevelDB's unsynced writes gone): it must be replayed from the log.
      if (i % 4 === 3) {
        const id = (await readVolumeIndex(home)).find((e) => e.name === name)!.id;
        await rm(join(home, VOLUMES_DIR, id, PROJECTION_DIR), { recursive: true, force: true });
      }
      let v: Volume;
      try {
        v = await Volume.open(home, name);
      } catch (err) {
        problems.push(`${label}: the volume does not reopen: ${(err as Error).stack}`);
        continue;
      }
      try {
        const report = await v.fsck();
        if (!report.ok) problems.push(`${label}: fsck: ${JSON.stringify(report.problems).slice(0, 2000)}`);
        const verdict = judge((await listVolume(v)).listed, states, steps, expected);
        if (!verdict.ok) problems.push(`${label}:\n  ${verdict.problems.slice(0, 20).join('\n  ')}`);
        else {
          outcomes.set(verdict.how, (outcomes.get(verdict.how) ?? 0) + 1);
          if (verdict.placeholder !== undefined) placeholders.push(`${label}: ${verdict.placeholder}`);
        }
        // The recovered volume takes new writes, and shows them: a projection ahead of its log would hide them.
        await v.mkdir('/after-cut');
        await v.writeFile('/after-cut/f', Buffer.from(label));
        assert.equal((await v.readFile('/after-cut/f')).toString(), label);
      } finally {
        await v.close();
      }
    }
    t.diagnostic(`outcomes: ${[...outcomes].map(([k, n]) => `${k}: ${n}`).join('; ')}`);
    assert.deepEqual(problems, [], `after power cuts:\n${problems.join('\n')}`);
    // A new file must be all or nothing: Volume.writeFile once appended its
    // create event at once and its set-content after the content's sync,
    // which also made the create durable, so a cut in between left it empty.
    await t.test('a new file written when the power fails is there whole or not at all', () => {
      assert.deepEqual(placeholders, [], `new files present but empty (their create durable, their content event not):\n${placeholders.join('\n')}`);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// The projection is written after the log's sync, so a crash leaves it
// behind the log, never ahead. It can still end up ahead when the log loses
// events it had made durable: the arenas restored from a backup, a disk that
// acknowledged an fsync it did not keep, a volume copied while in use. Then
// its version vector names events the log does not hold, and trusting it
// would show files that are gone and, worse, hide every new write (the
// writer reuses the lost sequence numbers, which the projection counts as
// applied). It must be noticed at open and replayed from the log.
test('a projection ahead of its log (the log lost events it reflects) is rebuilt at open, and new writes show', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-ahead-'));
  const home = join(dir, 'home');
  try {
    await (await initHome(home)).home.close();
    {
      const h = await openHome(home);
      await createVolume(h, 'v').finally(() => h.close());
    }
    const id = (await readVolumeIndex(home)).find((e) => e.name === 'v')!.id;
    const arenas = join(home, VOLUMES_DIR, id, ARENAS_DIR);
    let v = await Volume.open(home, 'v');
    await v.mkdir('/kept');
    await v.writeFile('/kept/f', Buffer.from('one'));
    await v.close();
    await cp(arenas, join(dir, 'backup'), { recursive: true });
    v = await Volume.open(home, 'v');
    await v.writeFile('/lost', Buffer.from('two'));
    await v.mkdir('/lost-dir');
    await v.close();
    await rm(arenas, { recursive: true });
    await cp(join(dir, 'backup'), arenas, { recursive: true });

    v = await Volume.open(home, 'v');
    try {
      assert.deepEqual((await v.readdir('/')).map((e) => e.name), ['kept']);
      assert.equal((await v.readFile('/kept/f')).toString(), 'one');
      await v.writeFile('/new', Buffer.from('three'));
      await v.mkdir('/new-dir');
      assert.deepEqual((await v.readdir('/')).map((e) => e.name).sort(), ['kept', 'new', 'new-dir']);
      assert.equal((await v.readFile('/new')).toString(), 'three');
      const report = await v.fsck();
      assert.deepEqual(report.problems, []);
    } finally {
      await v.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// A long-running process (the daemon) must be able to reopen a volume after
// its disk failed under it, without restarting: close has to release the
// home and the projection even when closing the arenas fails.
test('after the power fails under an open volume, close releases it and the same process reopens it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-close-after-cut-'));
  const home = join(dir, 'home');
  try {
    await (await initHome(home)).home.close();
    {
      const h = await openHome(home);
      await createVolume(h, 'v').finally(() => h.close());
    }
    const fs = new FaultFileSystem();
    const v = await Volume.open(home, 'v', { fs });
    await v.writeFile('/kept', Buffer.from('acknowledged'));
    fs.powerCut();
    await assert.rejects(v.writeFile('/lost', Buffer.from('x')), (err: unknown) => isBazilError(err, ErrorCodes.IO));
    await v.close().catch(() => undefined);
    const again = await Volume.open(home, 'v');
    try {
      assert.equal((await again.readFile('/kept')).toString(), 'acknowledged');
      assert.deepEqual((await again.fsck()).problems, []);
    } finally {
      await again.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
