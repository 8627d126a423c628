// fsck: checks everything a volume is made of, reporting each problem with a
// stable code rather than stopping at the first.
//
// 1. Arenas: every record's checksum and digest, every index, every identity.
// 2. Log: every event's signature, chain link and dependency, and that every
//    body decrypts with the volume's key.
// 3. Content: every object every file refers to (manifest nodes and chunks)
//    is present, hashes to its id and opens with its key (the GCM tag).
// 4. Projection: a replay of the whole log into a scratch projection must
//    give a byte-identical dump (invariant 1).
// 5. Checkpoints (docs/history.md): each file's bytes must hash to its
//    name and its state (or a delta's base and changes) must equal a replay
//    of the log to its position (History.verify). A bad one is reported and
//    deleted: checkpoints are derived, so losing one loses nothing, and the
//    next history command writes it again from the log.

import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ErrorCodes, ioError, isBazilError, type BazilError, type ErrorCode } from '../../errors/index.js';
import { History } from '../history/history.js';
import { ARENAS_DIR } from '../home/volumes.js';
import type { ArenaSet } from '../../arena/arena-set.js';
import { checkAborted, type ContentStore } from '../cas/content-store.js';
import { openObject } from '../cas/convergent.js';
import { decodeManifest } from '../cas/manifest.js';
import type { LogStore } from '../log/stream.js';
import { ProjectionStore, Projector } from '../projection/index.js';

export interface FsckProblem {
  /** Which part of the volume: arenas, log, content, projection or checkpoints. */
  area: 'arenas' | 'log' | 'content' | 'projection' | 'checkpoints';
  code: ErrorCode;
  message: string;
}

export interface FsckReport {
  ok: boolean;
  problems: FsckProblem[];
  /** What was checked, for the summary. */
  counts: { records: number; events: number; files: number; objects: number };
  ms: number;
}

export interface FsckParts {
  arenas: ArenaSet;
  log: LogStore;
  content: ContentStore;
  projection: ProjectionStore;
  /** The volume's directory; the scratch replay goes in a temporary directory beside it. */
  dir: string;
}

export interface FsckOptions {
  signal?: AbortSignal;
  onProgress?: (phase: string) => void;
}

export async function runFsck(parts: FsckParts, options: FsckOptions = {}): Promise<FsckReport> {
  const start = Date.now();
  const problems: FsckProblem[] = [];
  const progress = options.onProgress ?? (() => {});

  progress('arenas');
  const arenaStats = parts.arenas.stats();
  for (const p of parts.arenas.verify()) {
    problems.push({ area: 'arenas', code: p.code as ErrorCode, message: `${p.path} at offset ${p.offset}: ${p.message}` });
  }
  problems.push(...(await cutRecords(join(parts.dir, ARENAS_DIR))));
  checkAborted(options.signal);

  progress('log');
  let events = 0;
  for (const pair of parts.log.versionVector().pairs()) events += Number(pair[1]);
  for (const p of parts.log.verifyAll()) {
    problems.push({ area: 'log', code: p.code, message: `writer ${p.writer}${p.seq === null ? '' : ` seq ${p.seq}`}: ${p.message}` });
  }
  checkAborted(options.signal);

  progress('content');
  const { files, objects } = await checkContent(parts, problems, options.signal);

  progress('projection');
  await checkProjection(parts, problems);
  checkAborted(options.signal);

  progress('checkpoints');
  await checkCheckpoints(parts, problems, options.signal);

  return {
    ok: problems.length === 0,
    problems,
    counts: { records: arenaStats.records, events, files, objects },
    ms: Date.now() - start,
  };
}

/**
 * The records an arena's open cut off behind a damaged one and kept aside
 * (`<arena>.cut-<offset>`, docs/arena.md "Recovery"): the volume no longer
 * reads them, so fsck reports them until someone inspects and removes the
 * file, rather than passing a volume whose objects or events went missing.
 */
async function cutRecords(arenasDir: string): Promise<FsckProblem[]> {
  let names: string[];
  try {
    names = await readdir(arenasDir);
  } catch (err) {
    throw ioError('readdir', arenasDir, err);
  }
  const out: FsckProblem[] = [];
  for (const name of names.filter((n) => /\.cut-\d+$/.test(n)).sort()) {
    const path = join(arenasDir, name);
    const { size } = await stat(path).catch((err: unknown) => { throw ioError('stat', path, err); });
    const offset = name.slice(name.lastIndexOf('-') + 1);
    out.push({
      area: 'arenas',
      code: ErrorCodes.CORRUPT_RECORD,
      message: `${path}: ${size} bytes cut from ${name.slice(0, name.lastIndexOf('.cut-'))} at offset ${offset} when it was opened, after a damaged record; the records in it are no longer read (remove the file once inspected)`,
    });
  }
  return out;
}

/** Walks every file the projection knows and opens every object it names. */
async function checkContent(parts: FsckParts, problems: FsckProblem[], signal: AbortSignal | undefined): Promise<{ files: number; objects: number }> {
  let files = 0;
  let objects = 0;
  const seen = new Set<string>();
  const root = await parts.projection.rootId();
  if (root === undefined) return { files, objects };
  // Paths go with the directories, so that a problem names the file where it is.
  const stack: Array<{ dir: Buffer; path: string }> = [{ dir: root, path: '' }];
  while (stack.length > 0) {
    checkAborted(signal);
    const { dir, path } = stack.pop()!;
    let after: string | undefined;
    for (;;) {
      const page = await unlessUnreadable(parts.projection.readdir(dir, { after, limit: 1000 }), `directory ${dir.toString('hex')}`, problems);
      if (page === undefined) break;
      for (const entry of page) {
        const attrs = await unlessUnreadable(parts.projection.getattr(entry.id), `inode ${entry.id.toString('hex')}`, problems);
        if (attrs === undefined) continue;
        if (attrs.kind === 'dir') {
          stack.push({ dir: entry.id, path: `${path}/${entry.name}` });
          continue;
        }
        if (attrs.kind !== 'file' || attrs.manifest === null) continue;
        const key = entry.id.toString('hex');
        if (seen.has(key)) continue;
        seen.add(key);
        files++;
        objects += checkFile(parts.content, `${path}/${entry.name}`, attrs.manifest, problems);
      }
      if (page.length < 1000) break;
      after = page[page.length - 1].name;
    }
  }
  return { files, objects };
}

function checkFile(content: ContentStore, name: string, manifestBytes: Buffer, problems: FsckProblem[]): number {
  let checked = 0;
  try {
    const manifest = decodeManifest(manifestBytes);
    for (const ref of content.objects(manifest, { verifyIds: true })) {
      if (ref.kind !== 'chunk') continue;
      checked++;
      const held = content.getSealed(ref.id);
      if (held === undefined) {
        // The event naming this content is in the log, its object is not in any arena: content lost after a crash (its event went to the log before it was durable) or never stored.
        problems.push({ area: 'content', code: ErrorCodes.NOT_FOUND, message: `${name}: object ${ref.id.toString('hex')} is missing: an event names content this volume does not hold` });
        continue;
      }
      openObject(held.sealed, ref.key, { verifyId: ref.id });
    }
  } catch (err) {
    if (!isBazilError(err)) throw err;
    problems.push({ area: 'content', code: err.code, message: `${name}: ${err.message}` });
  }
  return checked;
}

/**
 * A projection read that meets a record it cannot open (damaged, or sealed
 * with another key) is a finding, not the end of the check: fsck goes on and
 * lists everything else. Such records are derived; `bazil rebuild` replaces
 * them from the log.
 */
async function unlessUnreadable<T>(read: Promise<T>, what: string, problems: FsckProblem[]): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (!isBazilError(err) || err.code !== ErrorCodes.CORRUPT_METADATA) throw err;
    problems.push({ area: 'projection', code: err.code, message: `${what} cannot be read: ${err.message}; \`bazil rebuild\` replaces the projection from the log` });
    return undefined;
  }
}

/** Replays the log into a scratch projection and compares the dumps. */
async function checkProjection(parts: FsckParts, problems: FsckProblem[]): Promise<void> {
  const scratchDir = await mkdtemp(join(parts.dir, 'fsck-'));
  try {
    const scratch = await ProjectionStore.open(join(scratchDir, 'projection'), parts.projection.cipher);
    try {
      try {
        await new Projector(scratch, parts.log).rebuild();
      } catch (err) {
        // A log that does not replay (a damaged record or event, already
        // reported above) leaves nothing to compare the projection with.
        if (!isBazilError(err)) throw err;
        problems.push({ area: 'projection', code: err.code, message: `the log does not replay, so the projection cannot be checked: ${err.message}` });
        return;
      }
      // With the back-links: derived from the entries, they must match a replay too.
      const [live, replayed] = await Promise.all([
        unlessUnreadable(parts.projection.dump({ links: true }), 'the projection', problems),
        scratch.dump({ links: true }),
      ]);
      if (live !== undefined && !live.equals(replayed)) {
        problems.push({
          area: 'projection',
          code: ErrorCodes.CORRUPT_METADATA,
          message: `the projection differs from a replay of the log (${live.length} vs ${replayed.length} bytes); \`bazil rebuild\` replaces it`,
        });
      }
    } finally {
      await scratch.close();
    }
  } finally {
    await rm(scratchDir, { recursive: true, force: true });
  }
}

/**
 * Checks every history checkpoint against its name and a replay of the
 * log; each bad one is a BAD_CHECKPOINT finding, and its file is deleted.
 */
async function checkCheckpoints(parts: FsckParts, problems: FsckProblem[], signal: AbortSignal | undefined): Promise<void> {
  const deleted = 'deleted (checkpoints are derived from the log: the next history command writes it again)';
  const damaged: BazilError[] = [];
  const history = await History.open(
    { name: basename(parts.dir), dir: parts.dir, log: parts.log, content: parts.content, cipher: parts.projection.cipher },
    { onDamaged: (err) => damaged.push(err) },
  );
  for (const err of damaged) problems.push({ area: 'checkpoints', code: ErrorCodes.BAD_CHECKPOINT, message: `${err.message}; ${deleted}` });
  try {
    const { findings } = await history.verify({ signal, rewrite: false });
    for (const f of findings) {
      problems.push({ area: 'checkpoints', code: ErrorCodes.BAD_CHECKPOINT, message: `checkpoint @${f.count} ${f.path}: ${f.why}; ${deleted}` });
    }
  } catch (err) {
    // A log that does not replay is reported above; the checkpoints cannot be checked against it.
    if (!isBazilError(err) || err.code === ErrorCodes.ABORTED) throw err;
    problems.push({ area: 'checkpoints', code: err.code, message: `the log does not replay, so the checkpoints cannot be checked: ${err.message}` });
  }
}
