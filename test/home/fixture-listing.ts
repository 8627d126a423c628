// A volume's tree as plain data (kinds, modes, owners, sizes, content hashes,
// symlink targets, hard-link groups, xattrs), so a frozen fixture home can be
// compared with what it held when it was made.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VolumeReader } from '../../src/volume/reader.js';

export interface ListedNode {
  path: string;
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  mtime: string;
  /** SHA-256 of the content (files), of the target (symlinks), else null. */
  sha256: string | null;
  target: string | null;
  /** The inode id: equal for the names of one hard-linked file. */
  inode: string;
  xattrs: Record<string, string>;
}

/** Every node under `/`, depth first, names in byte order. */
export async function listVolumeTree(volume: VolumeReader): Promise<ListedNode[]> {
  const out: ListedNode[] = [];
  const visit = async (path: string): Promise<void> => {
    const attrs = await volume.stat(path);
    const xattrs: Record<string, string> = {};
    for (const name of (await volume.listxattr(path)).sort()) xattrs[name] = (await volume.getxattr(path, name)).toString('hex');
    let sha256: string | null = null;
    let target: string | null = null;
    if (attrs.kind === 'file') {
      const hash = createHash('sha256');
      for await (const piece of volume.createReadStream(path)) hash.update(piece);
      sha256 = hash.digest('hex');
    } else if (attrs.kind === 'symlink') {
      target = await volume.readlink(path);
      sha256 = createHash('sha256').update(target).digest('hex');
    }
    out.push({
      path, kind: attrs.kind, mode: attrs.mode, uid: attrs.uid, gid: attrs.gid, size: attrs.size, nlink: attrs.nlink,
      mtime: attrs.mtime.toString(), sha256, target, inode: attrs.id.toString('hex'), xattrs,
    });
    if (attrs.kind !== 'dir') return;
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await volume.readdir(path, { after, limit: 500 });
      if (page.length === 0) break;
      names.push(...page.map((e) => e.name));
      after = page[page.length - 1]!.name;
    }
    // Pages come in the projection's (hash) order; the listing promises byte order.
    for (const name of names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) await visit(path === '/' ? `/${name}` : `${path}/${name}`);
  };
  await visit('/');
  return out;
}

/**
 * The frozen fixture home's directory (test/fixtures/home-v1), found by
 * walking up from this compiled file, so tests built into any output
 * directory find the one source copy.
 */
export function fixtureHomeDir(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'test', 'fixtures', 'home-v1');
    if (existsSync(join(candidate, 'expected.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error('test/fixtures/home-v1 not found above this build');
  }
}

export interface FixtureExpected {
  volume: string;
  nodes: ListedNode[];
}

/** Copies the fixture home to `dest` (the fixture itself is never opened: opening writes to it) and returns what it should hold. */
export async function copyFixtureHome(dest: string): Promise<FixtureExpected> {
  const src = fixtureHomeDir();
  await cp(join(src, 'home'), dest, { recursive: true });
  return JSON.parse(await readFile(join(src, 'expected.json'), 'utf8')) as FixtureExpected;
}
