// Damaging a volume's arena records the way a failing disk or a hostile
// store would, and checking that `bazil fsck` and the reads catch it
// (acceptance-corruption-*.test.ts register these cases).
//
// The volume issue's encryption acceptance, integrity half: a flipped byte
// in any object (a content arena record) or any event (a log arena record)
// is caught by `bazil fsck` and on read (`bazil cat`, `bazil export`) with a
// stable error code, and never crashes the command (exit 1, the code in the
// --json error, no stack trace, no BAZIL_INTERNAL). Three kinds of damage
// each: a raw flip in an active arena (the frame checksum sees it), a flip
// with the frame checksum recomputed (what a store that rewrites records
// does: only the AEAD tag, the object id or the event signature can see it),
// and a flip in a sealed arena (the seal's digests see it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes } from '../../errors/index.js';
import { framesOf, flipPayloadByte, sealAllArenas, type Frame } from './arena-frames.js';
import { SLOW, cli, cliOk, newHome, volumeDir, withTemp, type CliRun } from './acceptance.js';
import { rng } from './gen-tree.js';

/** Records damaged per case: a few in CI, more with BAZIL_SLOW=1. */
const PER_CASE = SLOW ? 8 : 1;
const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes).filter((c) => c !== ErrorCodes.INTERNAL));

interface Source {
  files: Map<string, Buffer>;
}

async function makeSource(src: string): Promise<Source> {
  const files = new Map<string, Buffer>();
  await mkdir(join(src, 'sub'), { recursive: true });
  for (let i = 0; i < 4; i++) {
    const rel = i % 2 === 0 ? `sub/f${i}` : `f${i}`;
    const data = randomBytes(20_000 + i * 150_000);
    await writeFile(join(src, rel), data);
    files.set(rel, data);
  }
  return { files };
}

/** A pristine home with the source imported, its arenas sealed or not. */
async function pristine(dir: string, sealed: boolean): Promise<{ home: string; source: Source; src: string }> {
  const src = join(dir, 'src');
  const source = await makeSource(src);
  const home = newHome(dir, 'v');
  cliOk(home, ['import', src, 'v:/t']);
  if (sealed) await sealAllArenas(join(volumeDir(home, 'v'), 'arenas'));
  return { home, source, src };
}

function assertCaught(r: CliRun, what: string): string {
  assert.notEqual(r.status, 0, `${what} must fail: ${r.stderr}`);
  assert.equal(r.status, 1, `${what}: exit 1, not a crash: ${r.stderr}`);
  assert.ok(r.error !== null, `${what}: a JSON error on stderr: ${r.stderr}`);
  assert.ok(KNOWN_CODES.has(r.error.code), `${what}: a stable code, got ${r.error.code}: ${r.stderr}`);
  assert.ok(!/\n\s+at /.test(r.stderr), `${what}: no stack trace: ${r.stderr}`);
  return r.error.code;
}

interface Outcome {
  fsck: string[];
  export: string;
  cat: string[];
  rebuild?: string;
}

/** The codes of a fsck that must find damage: exit 1 with a report, or a clear error if the volume cannot open. */
function fsckCodes(home: string, what: string): string[] {
  const fsck = cli(home, ['--json', 'fsck', 'v']);
  if (fsck.status === 1 && fsck.error === null) {
    const report = JSON.parse(fsck.stdout.toString()) as { ok: boolean; problems: Array<{ code: string; area: string; message: string }> };
    assert.equal(report.ok, false, `${what}: fsck must find the damage`);
    for (const p of report.problems) assert.ok(KNOWN_CODES.has(p.code), `${what}: fsck problem with a stable code: ${JSON.stringify(p)}`);
    return report.problems.map((p) => `${p.area}:${p.code}`);
  }
  return [`open:${assertCaught(fsck, `${what}: fsck`)}`];
}

/**
 * fsck, export and cat of every file of the damaged home. Every read either
 * fails with a stable code or returns the source's bytes, never other bytes.
 * Content damage must make the export fail (every object belongs to the
 * exported tree). Reads are served by the projection, so event damage shows
 * on reads only once the log is read again: `bazil rebuild` must then fail
 * with a stable code, or leave a volume that fsck still reports.
 */
async function check(home: string, dir: string, source: Source, kind: 'content' | 'log', cut: 'none' | 'middle' | 'tail', what: string): Promise<Outcome> {
  // The first command to open the volume after a raw flip in an active arena
  // cuts it there and says so on stderr. Damage in the last record cannot be
  // told from a torn write: it is cut as a torn tail, with nothing to save.
  const first = cli(home, ['ls', 'v:/']);
  if (cut === 'middle') assert.match(first.stderr, /BAZIL_ARENA_RECOVERY.*damaged record.*saved them in/s, `${what}: the cut is reported`);
  if (cut === 'tail') assert.match(first.stderr, /BAZIL_ARENA_RECOVERY.*torn tail/s, `${what}: the cut is reported`);
  // A log cut as a torn tail leaves a shorter, consistent log: the event is gone without a trace for fsck.
  if (cut === 'tail' && kind === 'log') {
    const r = cli(home, ['--json', 'fsck', 'v']);
    assert.ok(r.status === 0 || r.status === 1, `${what}: fsck runs: ${r.stderr}`);
  }
  const fsck = cut === 'tail' && kind === 'log' ? ['(torn tail: none left to find)'] : fsckCodes(home, what);
  const exp = cli(home, ['--json', 'export', 'v:/t', join(dir, 'out')]);
  let exportCode: string;
  if (exp.status === 0 && kind === 'log') {
    // An export that succeeds holds the source's bytes in every file it wrote.
    // After a cut the volume is the log before the damaged event, fewer files,
    // and a file whose create came before the cut and its set-content after
    // is there and empty: a state that prefix of the log passed through.
    let written = 0;
    for (const [rel, data] of source.files) {
      const got = await readFile(join(dir, 'out', rel)).catch(() => null);
      if (got === null) continue;
      written++;
      assert.ok(got.equals(data) || (cut !== 'none' && got.length === 0), `${what}: exported ${rel} with other bytes than the source's (${got.length} bytes)`);
    }
    exportCode = `ok (${written}/${source.files.size} files)`;
  } else {
    exportCode = assertCaught(exp, `${what}: export`);
  }
  const cat: string[] = [];
  // Reads of event damage go through the projection like the export above; cat adds nothing there.
  for (const [rel, data] of kind === 'content' ? source.files : new Map<string, Buffer>()) {
    const r = cli(home, ['--json', 'cat', `v:/t/${rel}`]);
    if (r.status === 0) {
      assert.ok(r.stdout.equals(data), `${what}: cat ${rel} succeeded with other bytes than the source's`);
    } else {
      cat.push(assertCaught(r, `${what}: cat ${rel}`));
    }
  }
  if (kind === 'content') return { fsck, export: exportCode, cat };
  const rebuild = cli(home, ['--json', 'rebuild', 'v']);
  let rebuildCode: string;
  if (rebuild.status !== 0) rebuildCode = assertCaught(rebuild, `${what}: rebuild`);
  else if (cut === 'tail') rebuildCode = 'ok (a shorter log)';
  else rebuildCode = `ok, then fsck ${fsckCodes(home, `${what}: after rebuild`).join(',')}`;
  return { fsck, export: exportCode, cat, rebuild: rebuildCode };
}

/** Registers the three damage cases of one kind of record: raw flip (active arena), flip with the checksum recomputed, flip in a sealed arena. */
export function corruptionTests(kind: 'content' | 'log'): void {
  for (const c of [
    { kind, sealed: false, fixChecksum: false },
    { kind, sealed: false, fixChecksum: true },
    { kind, sealed: true, fixChecksum: false },
  ]) registerCase(c);
}

function registerCase(c: { kind: 'content' | 'log'; sealed: boolean; fixChecksum: boolean }): void {
  const name = `a flipped byte in ${c.kind === 'content' ? 'an object' : 'an event'} (${c.sealed ? 'sealed arena' : c.fixChecksum ? 'active arena, frame checksum recomputed' : 'active arena'}) is caught by fsck and on read`;
  test(name, { timeout: SLOW ? 20 * 60_000 : 120_000 }, async () => {
    await withTemp('accept-corrupt', async (dir) => {
      const base = join(dir, 'base');
      await mkdir(base);
      const { home: baseHome, source } = await pristine(base, c.sealed);
      const baseArenas = join(volumeDir(baseHome, 'v'), 'arenas');
      const files = (await readdir(baseArenas)).filter((n) => n.startsWith(`${c.kind}.`) || (c.sealed && n.endsWith('.arena')));
      // Frames are found in the active file before sealing moves it, so a sealed case reads them from its own file.
      const candidates: Array<{ file: string; frame: Frame }> = [];
      for (const file of files) {
        const bytes = await readFile(join(baseArenas, file));
        if (c.sealed && !file.endsWith('.arena')) continue;
        const kindOk = c.sealed ? bytes.subarray(0, 128).includes(Buffer.from(c.kind)) : true;
        if (!kindOk) continue;
        for (const frame of framesOf(bytes)) candidates.push({ file, frame });
      }
      assert.ok(candidates.length > 0, `records of kind ${c.kind} in ${files.join(', ')}`);
      const r = rng(Number(process.env.BAZIL_SEED ?? Date.now() % 2 ** 31));
      // The full run always includes the first record (the create-volume event, for the log) and the last (cut as a torn tail).
      const picks = new Set<number>(SLOW ? [0, candidates.length - 1] : []);
      while (picks.size < Math.min(PER_CASE, candidates.length)) picks.add(Math.floor(r() * candidates.length));
      for (const i of picks) {
        const { file, frame } = candidates[i]!;
        const trial = join(dir, `trial-${i}`);
        await cp(base, trial, { recursive: true, preserveTimestamps: true });
        const home = join(trial, 'home');
        const arenas = join(volumeDir(home, 'v'), 'arenas');
        const at = await flipPayloadByte(join(arenas, file), frame, r(), c.fixChecksum);
        const what = `${c.kind} record ${i} of ${candidates.length} (type ${frame.type}, offset ${frame.offset}, byte ${at})`;
        const raw = !c.sealed && !c.fixChecksum;
        const last = candidates.filter((x) => x.file === file).every((x) => x.frame.offset <= frame.offset);
        const outcome = await check(home, trial, source, c.kind, !raw ? 'none' : last ? 'tail' : 'middle', what);
        process.stderr.write(`# ${what}: fsck ${outcome.fsck.join(',')}; export ${outcome.export}; cat failed ${outcome.cat.length}/${source.files.size} (${[...new Set(outcome.cat)].join(',')})${outcome.rebuild === undefined ? '' : `; rebuild ${outcome.rebuild}`}\n`);
        await rm(trial, { recursive: true, force: true });
      }
    });
  });
}
