// Shared helpers of the history tests: a whole-tree listing of any
// projection a VolumeReader can read (live or in-memory), in the shape the
// projection tests' model produces, and the projection dump cut to the
// tables both projections keep.

import type { ProjectionReader } from '../../src/volume/reader.js';
import type { Listed } from '../projection/helpers.js';

/** Every node reachable from the root, depth first in name order (as listTree in test/projection). */
export async function listProjection(p: ProjectionReader): Promise<Listed[]> {
  const root = await p.rootId();
  if (root === undefined) return [];
  const out: Listed[] = [];
  const visit = async (id: Buffer, path: string): Promise<void> => {
    const a = (await p.getattr(id))!;
    const xattrs: [string, string][] = [];
    for (const n of await p.listxattr(id)) xattrs.push([n, (await p.getxattr(id, n))!.toString('hex')]);
    out.push({
      path, kind: a.kind, mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, nlink: a.nlink, mtime: a.mtime, ctime: a.ctime, atime: a.atime,
      manifest: a.manifest?.toString('hex') ?? null, target: (await p.readlink(id)) ?? null, xattrs,
    });
    if (a.kind !== 'dir') return;
    const entries: { name: string; id: Buffer }[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await p.readdir(id, { after, limit: 2 });
      entries.push(...page);
      if (page.length < 2) break;
      after = page[page.length - 1]!.name;
    }
    // The LevelDB projection pages in hash order; the listing is in name order.
    for (const e of entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))) await visit(e.id, `${path}/${e.name}`);
  };
  await visit(root, '');
  return out;
}

/** A dump's (key, value) records whose table tag is at most `maxTag`: the tables of the original schema (docs/projection.md). */
export function dumpTables(dump: Buffer, maxTag = 0x05): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < dump.length;) {
    const klen = dump.readUInt32BE(at);
    const key = dump.subarray(at, at + 4 + klen);
    at += 4 + klen;
    const vlen = dump.readUInt32BE(at);
    const value = dump.subarray(at, at + 4 + vlen);
    at += 4 + vlen;
    if (key[4]! <= maxTag) parts.push(key, value);
  }
  return Buffer.concat(parts);
}
