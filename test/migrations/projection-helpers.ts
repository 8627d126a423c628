// Shared by the projection migration tests: temporary homes, a v1
// (plaintext, no derived tables) home of any size, the volume's projection
// cipher, and the child process that opens a volume so it can be killed.

import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { initHome, openHome } from '../../src/home/home.js';
import { createVolume, openVolumeByName } from '../../src/home/volumes.js';
import { ProjectionStore } from '../../src/projection/store.js';
import { ProjectionCipher } from '../../src/projection/cipher.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { SealedLevel } from '../../src/projection/sealed-level.js';
import { PROJECTION_DIR, Volume } from '../../src/volume/volume.js';

export const CHILD = fileURLToPath(new URL('./projection-migrate-child.js', import.meta.url));
export const SLOW = process.env.BAZIL_SLOW === '1';

export async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-migrate-projection-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function projectionDir(home: string): Promise<string> {
  const [id] = await readdir(join(home, 'volumes'));
  return join(home, 'volumes', id!, PROJECTION_DIR);
}

export async function formatVersion(dir: string): Promise<number | null> {
  try {
    return (JSON.parse(await readFile(join(dir, 'FORMAT.json'), 'utf8')) as { version: number }).version;
  } catch {
    return null;
  }
}

export const quiet = (): void => undefined;

/** The projection cipher of the home's volume `name`, as Volume.open derives it. */
export async function cipherOf(home: string, name: string): Promise<ProjectionCipher> {
  const h = await openHome(home);
  try {
    const open = await openVolumeByName(h, name);
    try {
      return new ProjectionCipher(open.keys.projectionKey);
    } finally {
      await open.close();
    }
  } finally {
    await h.close();
  }
}

/** Every record of a LevelDB as stored, in key order. */
export async function rawDump(dir: string): Promise<Buffer> {
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  await db.open();
  try {
    const parts: Buffer[] = [];
    for await (const [k, v] of db.iterator()) parts.push(k, Buffer.from([0]), v, Buffer.from([1]));
    return Buffer.concat(parts);
  } finally {
    await db.close();
  }
}

/**
 * Strips a current projection back to schema 1: what the volumes issue's
 * code wrote (the inode, entry, xattr and note tables in plaintext, no
 * derived ones, no key check, no record), in a fresh LevelDB.
 */
export async function downgrade(proj: string, cipher: ProjectionCipher, keepDerived = false): Promise<void> {
  const sealed = new ClassicLevel<Buffer, Buffer>(proj, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await sealed.open();
  const plainDir = `${proj}.plain`;
  const plain = new ClassicLevel<Buffer, Buffer>(plainDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await plain.open();
  try {
    const ops: { type: 'put'; key: Buffer; value: Buffer }[] = [];
    for await (const [key, value] of new SealedLevel(sealed, new SealingCodec(cipher)).iterator()) {
      if (key.equals(Buffer.from('\x01keycheck', 'latin1')) || (!keepDerived && key[0]! >= 0x06)) continue;
      ops.push({ type: 'put', key, value });
    }
    await plain.batch(ops, { sync: true });
  } finally {
    await plain.close();
    await sealed.close();
  }
  await rm(proj, { recursive: true });
  await cp(plainDir, proj, { recursive: true });
  await rm(plainDir, { recursive: true });
}

/** A v1 home with `files` nodes in a few levels of directories, sizes set by truncate (no content needed). */
export async function makeV1Home(home: string, files: number): Promise<void> {
  const { home: h } = await initHome(home);
  await createVolume(h, 'big').finally(() => h.close());
  const v = await Volume.open(home, 'big');
  try {
    await v.batch(async (b) => {
      const root = await v.resolve('/');
      const dirs: Buffer[] = [root];
      for (let d = 0; d < Math.max(4, Math.floor(files / 50)); d++) {
        const parent = dirs[Math.floor(d / 3)]!;
        dirs.push(await b.create({ type: 'mkdir', parent, name: `d${d}`, mode: 0o755, uid: 0, gid: 0 }));
      }
      for (let i = 0; i < files; i++) {
        const inode = await b.create({ type: 'create', parent: dirs[i % dirs.length]!, name: `f${i}`, mode: 0o644, uid: 0, gid: 0 });
        await b.append({ type: 'truncate', inode, size: (i * 7919) % 100_000 });
        if (i % 10 === 0) await b.append({ type: 'link', inode, parent: root, name: `h${i}` });
      }
    });
  } finally {
    await v.close();
  }
  await downgrade(await projectionDir(home), await cipherOf(home, 'big'));
}

export interface ChildRun {
  killedAfterMs: number | null;
  openedMs: number | null;
}

/** Runs the child; with `killAfterMs`, SIGKILLs it that long after it is ready (if still running). */
export function runChild(home: string, killAfterMs: number | null): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, home, 'big'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killAfterMs !== null && timer === undefined && out.includes('ready\n')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const opened = /opened (\d+)/.exec(out);
      if (signal === null && code !== 0) reject(new Error(`child failed (${code}): ${err}`));
      else resolve({ killedAfterMs: signal === 'SIGKILL' ? killAfterMs : null, openedMs: opened === null ? null : Number(opened[1]) });
    });
  });
}

export async function dumpWithLinks(proj: string, cipher: ProjectionCipher): Promise<Buffer> {
  const store = await ProjectionStore.open(proj, cipher);
  try {
    return await store.dump({ links: true });
  } finally {
    await store.close();
  }
}

/** Names, kinds and sizes of the whole tree, plus each directory's exact aggregates. */
export async function shallowTree(v: Volume): Promise<string[]> {
  const out: string[] = [];
  const visit = async (p: string): Promise<void> => {
    const agg = await v.aggregates(p, { exact: true });
    out.push(`${p} dir ${agg.rbytes} ${agg.rfiles} ${agg.rsubdirs}`);
    for (let after: string | undefined; ;) {
      const page = await v.readdir(p, { after, limit: 1000 });
      if (page.length === 0) break;
      for (const e of page) {
        const child = p === '/' ? `/${e.name}` : `${p}/${e.name}`;
        const a = await v.getattr(e.id);
        if (a.kind === 'dir') await visit(child);
        else out.push(`${child} ${a.kind} ${a.size} ${a.nlink}`);
      }
      after = page[page.length - 1]!.name;
    }
  };
  await visit('/');
  return out;
}
