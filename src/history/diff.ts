// What changed between two states of a volume (`bazil diff`). Nodes are
// matched by identity (an inode's id is the event that created it), not by
// path, so a moved file is a rename rather than a removal and an addition,
// and a file replaced by a new one of the same name is a removal and an
// addition rather than a modification.

import type { Attrs } from '../projection/store.js';
import type { ProjectionReader, VolumeReader } from '../volume/reader.js';

type Reader = VolumeReader<ProjectionReader>;

export interface TreeNode {
  id: string;
  kind: Attrs['kind'];
  /** Every path naming it (hard links), in walk order. */
  paths: string[];
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: bigint;
  manifest: string | null;
  target: string | null;
  xattrs: Map<string, string>;
}

const PAGE = 1000;

/** Every node reachable from `path`, by id. `limit` stops the walk after that many nodes (null when exceeded). */
export async function walkTree(reader: Reader, path = '/', options: { limit?: number; xattrs?: boolean; signal?: AbortSignal } = {}): Promise<Map<string, TreeNode> | null> {
  const nodes = new Map<string, TreeNode>();
  const visit = async (id: Buffer, p: string): Promise<boolean> => {
    const hex = id.toString('hex');
    const known = nodes.get(hex);
    if (known !== undefined) {
      known.paths.push(p);
      return true;
    }
    if (options.limit !== undefined && nodes.size >= options.limit) return false;
    const a = await reader.getattr(id, options);
    const xattrs = new Map<string, string>();
    if (options.xattrs !== false) {
      for (const name of await reader.listxattr(p, options)) xattrs.set(name, (await reader.getxattr(p, name, options)).toString('hex'));
    }
    nodes.set(hex, {
      id: hex, kind: a.kind, paths: [p], mode: a.mode, uid: a.uid, gid: a.gid, size: a.size, mtime: a.mtime,
      manifest: a.manifest?.toString('hex') ?? null, target: a.kind === 'symlink' ? await reader.readlinkId(id, p) : null, xattrs,
    });
    if (a.kind !== 'dir') return true;
    for (let page = await reader.readdir(p, { limit: PAGE, signal: options.signal }); page.length > 0;
      page = await reader.readdir(p, { after: page[page.length - 1]!.name, limit: PAGE, signal: options.signal })) {
      for (const e of page) if (!(await visit(e.id, p === '/' ? `/${e.name}` : `${p}/${e.name}`))) return false;
    }
    return true;
  };
  return (await visit(await reader.resolve(path, options), path)) ? nodes : null;
}

export interface DiffResult {
  added: { path: string; kind: Attrs['kind'] }[];
  removed: { path: string; kind: Attrs['kind'] }[];
  /** Same node, changed: `changes` lists what (content, mode, owner, mtime, target, xattrs). */
  modified: { path: string; kind: Attrs['kind']; changes: string[] }[];
  renamed: { from: string; to: string; kind: Attrs['kind'] }[];
}

/** The changes that turn the tree under `path` in `a` into the one in `b`. */
export async function diffTrees(a: Reader, b: Reader, path = '/', options: { signal?: AbortSignal } = {}): Promise<DiffResult> {
  const before = (await walkTree(a, path, options))!;
  const after = (await walkTree(b, path, options))!;
  const out: DiffResult = { added: [], removed: [], modified: [], renamed: [] };
  for (const [id, n] of after) {
    const old = before.get(id);
    if (old === undefined) {
      for (const p of n.paths) out.added.push({ path: p, kind: n.kind });
      continue;
    }
    const gone = old.paths.filter((p) => !n.paths.includes(p));
    const fresh = n.paths.filter((p) => !old.paths.includes(p));
    // Pair the names that went with the names that came: each pair is a rename, the rest links added or removed.
    for (let i = 0; i < Math.max(gone.length, fresh.length); i++) {
      if (i < gone.length && i < fresh.length) out.renamed.push({ from: gone[i]!, to: fresh[i]!, kind: n.kind });
      else if (i < fresh.length) out.added.push({ path: fresh[i]!, kind: n.kind });
      else out.removed.push({ path: gone[i]!, kind: n.kind });
    }
    const changes = changesOf(old, n);
    if (changes.length > 0) out.modified.push({ path: n.paths[0]!, kind: n.kind, changes });
  }
  for (const [id, n] of before) if (!after.has(id)) for (const p of n.paths) out.removed.push({ path: p, kind: n.kind });
  // What moved with a renamed directory is shown by that rename alone.
  out.renamed = out.renamed.filter((r) => !out.renamed.some((d) => d !== r && d.kind === 'dir'
    && r.from.startsWith(`${d.from}/`) && r.to === d.to + r.from.slice(d.from.length)));
  const byPath = (x: { path: string }, y: { path: string }): number => Buffer.compare(Buffer.from(x.path), Buffer.from(y.path));
  out.added.sort(byPath);
  out.removed.sort(byPath);
  out.modified.sort(byPath);
  out.renamed.sort((x, y) => Buffer.compare(Buffer.from(x.from), Buffer.from(y.from)));
  return out;
}

function changesOf(a: TreeNode, b: TreeNode): string[] {
  const changes: string[] = [];
  if (a.manifest !== b.manifest || a.size !== b.size) changes.push('content');
  if (a.mode !== b.mode) changes.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) changes.push('owner');
  // A directory's mtime moves with every change inside it, which the entries below already show.
  if (a.kind !== 'dir' && a.mtime !== b.mtime) changes.push('mtime');
  if (a.target !== b.target) changes.push('target');
  if (a.xattrs.size !== b.xattrs.size || [...a.xattrs].some(([k, v]) => b.xattrs.get(k) !== v)) changes.push('xattrs');
  return changes;
}
