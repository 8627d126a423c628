// Child process of content-order.test.ts: drives a WriteBatch through the
// interleaving that once let an event name content that was not durable,
// with the arenas on the fault-injecting file layer under a gate that
// holds file syncs, then cuts the power at the worst moment for the
// content rule: once every log sync under way has completed, before the
// content arena's sync does. Whatever was acknowledged of the log is then
// on disk and whatever content was not synced is gone; the parent reopens
// the volume and runs fsck.
//
// The interleaving: content write W starts; the batch's flush starts its
// sync of the arenas while W is still being sealed (its objects are
// appended after the sync began, so the sync does not cover them); W
// finishes while that sync is held; the sync completes; the file naming
// W's manifest is created. That create must wait for another sync.
//
// argv: homeDir volumeName
// stdout: `created-at-once` or `created-queued` (what createFile did), then
// `cut` once the power is cut, or `done` if the batch committed.

import { writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { ArenaFile, FileStat, FileSystem, OpenMode } from '../../arena/file-system.js';
import { FaultFileSystem, isPowerCut } from '../../arena/fault-fs.js';
import { manifestBytes, Volume } from '../../src/volume/volume.js';

const [homeDir, name] = process.argv.slice(2) as [string, string];

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

type Mode = 'pass' | 'hold' | 'cut-before-content';

/**
 * A file layer over the fault layer whose file syncs can be held until
 * released, or (cut-before-content) made to cut the power: a content
 * arena's sync first lets the log syncs started with it complete, then
 * cuts instead of syncing.
 */
class GateFileSystem implements FileSystem {
  mode: Mode = 'pass';
  /** Syncs entered while holding. */
  held = 0;
  private release: () => void = () => {};
  private released: Promise<void> = Promise.resolve();
  private readonly logSyncs = new Set<Promise<void>>();

  constructor(readonly inner: FaultFileSystem) {}

  hold(): void {
    this.mode = 'hold';
    this.released = new Promise((resolve) => { this.release = resolve; });
  }

  pass(): void {
    this.mode = 'pass';
    this.release();
  }

  async gatedSync(path: string, sync: () => Promise<void>): Promise<void> {
    if (this.mode === 'hold') {
      this.held++;
      await this.released;
    }
    if (this.mode === 'cut-before-content') {
      if (/\/content\.[0-9a-f]+\.\d+\.active$/.test(path)) {
        // The arena set starts every stream's sync in one loop: a turn later, every log sync of this round has begun.
        await new Promise((resolve) => setImmediate(resolve));
        await Promise.allSettled([...this.logSyncs]);
        say('cut');
        this.inner.powerCut();
        return sync();
      }
      if (/\/log\.[0-9a-f]+\.\d+\.active$/.test(path)) {
        const p = sync();
        this.logSyncs.add(p);
        return p;
      }
    }
    return sync();
  }

  open(path: string, mode: OpenMode): ArenaFile {
    const file = this.inner.open(path, mode);
    const gate = this;
    return {
      path: file.path,
      size: () => file.size(),
      read: (buf, offset, length, position) => file.read(buf, offset, length, position),
      write: (buf, offset, length, position) => file.write(buf, offset, length, position),
      sync: () => gate.gatedSync(path, () => file.sync()),
      startWriteback: (position, length) => file.startWriteback(position, length),
      truncate: (length) => file.truncate(length),
      punchHole: (position, length) => file.punchHole(position, length),
      map: () => file.map(),
      close: () => file.close(),
    };
  }

  rename(from: string, to: string): void { this.inner.rename(from, to); }
  unlink(path: string): void { this.inner.unlink(path); }
  readdir(dir: string): string[] { return this.inner.readdir(dir); }
  mkdirp(dir: string): void { this.inner.mkdirp(dir); }
  syncDir(dir: string): Promise<void> { return this.inner.syncDir(dir); }
  exists(path: string): boolean { return this.inner.exists(path); }
  stat(path: string): FileStat { return this.inner.stat(path); }
}

const gate = new GateFileSystem(new FaultFileSystem());
const exitOnCut = (err: unknown): void => {
  if (!isPowerCut(err) && !gate.inner.isCut) {
    say(`error ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  }
  // A dead machine closes nothing.
  process.exit(0);
};
process.on('unhandledRejection', exitOnCut);

try {
  const v = await Volume.open(homeDir, name, { fs: gate });
  const root = await v.resolve('/');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  await v.batch(async (b) => {
    // Unsynced content before the flush, so that its sync has a file to sync (and hold).
    await b.writeContent([randomBytes(64 * 1024)]);
    // Several slabs, so the write runs across many turns of the event loop.
    const writing = b.writeContent([randomBytes(6 * 1024 * 1024)]);
    gate.hold();
    const flushing = b.flush();
    // The flush's sync must have begun before the write's objects are appended.
    for (const started = Date.now(); gate.held === 0;) {
      if (Date.now() - started > 30_000) throw new Error('the flush never synced a file');
      await new Promise((resolve) => setImmediate(resolve));
    }
    say('sync-held');
    const written = await writing;
    gate.pass();
    await flushing;
    gate.mode = 'cut-before-content';
    const id = await b.createFile({
      parent: root,
      create: { type: 'create', parent: root, name: 'f', mode: 0o644, uid, gid, mtime: 1_000_000_000n, size: written.size, manifest: manifestBytes(written.manifestRoot) },
      then: () => [],
    });
    say(id === null ? 'created-queued' : 'created-at-once');
  });
  say('done');
  await v.close();
  process.exit(0);
} catch (err) {
  exitOnCut(err);
}
