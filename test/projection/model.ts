// An in-memory model of a POSIX tree for the property tests: random
// operation seeds become event bodies valid against the model (or nothing,
// where a front end would return an error), and the model applies each with
// the event's time, so it can be compared with the projection node by node.

import fc from 'fast-check';
import type { EventBody } from '../../src/log/event.js';
import { hlcToNanoseconds } from '../../src/log/hlc.js';
import type { Listed } from './helpers.js';

interface MNode {
  kind: 'dir' | 'file' | 'symlink' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  mtime: bigint;
  ctime: bigint;
  atime: bigint | null;
  manifest: string | null;
  target: string | null;
  xattrs: Map<string, string>;
  entries: Map<string, string>;
}

const OPS = ['mkdir', 'create', 'write', 'truncate', 'rename', 'unlink', 'rmdir', 'link', 'symlink', 'mknod', 'chmod', 'chown', 'utimens', 'setxattr', 'removexattr'] as const;

export interface OpSeed {
  t: (typeof OPS)[number];
  a: number;
  b: number;
  name: string;
  n: number;
  bytes: Uint8Array;
}

export function arbOp(): fc.Arbitrary<OpSeed> {
  return fc.record({
    // Node-making operations twice as often, so trees grow enough for moves and removals to bite.
    t: fc.constantFrom(...OPS, 'mkdir', 'create', 'mkdir', 'create', 'link'),
    a: fc.nat(1000),
    b: fc.nat(1000),
    name: fc.constantFrom('a', 'b', 'c', 'é'),
    n: fc.integer({ min: 0, max: 0o777 }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }).map((o) => ({ ...o }));
}

interface Slot {
  parent: string;
  name: string;
  child: string;
}

/** An operation ready to become an event: its body, and how the model changes once the event has an id and a clock. */
export interface Planned {
  body: EventBody;
  commit(id: Buffer, hlc: bigint): void;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const id = (h: string): Buffer => Buffer.from(h, 'hex');

export class Model {
  nodes = new Map<string, MNode>();

  constructor(public root: string) {}

  static volume(root: Buffer, hlc: bigint, mode: number, uid: number, gid: number): Model {
    const m = new Model(hex(root));
    m.nodes.set(m.root, m.node('dir', mode, uid, gid, hlcToNanoseconds(hlc), null));
    return m;
  }

  clone(): Model {
    const m = new Model(this.root);
    m.nodes = structuredClone(this.nodes);
    return m;
  }

  private node(kind: MNode['kind'], mode: number, uid: number, gid: number, now: bigint, target: string | null): MNode {
    return {
      kind, mode, uid, gid, size: target === null ? 0 : Buffer.byteLength(target), nlink: kind === 'dir' ? 2 : 1,
      mtime: now, ctime: now, atime: null, manifest: null, target, xattrs: new Map(), entries: new Map(),
    };
  }

  /** Live directories, in tree order. */
  private dirs(): string[] {
    const out: string[] = [];
    const visit = (d: string): void => {
      out.push(d);
      for (const c of this.nodes.get(d)!.entries.values()) if (this.nodes.get(c)!.kind === 'dir') visit(c);
    };
    visit(this.root);
    return out;
  }

  private slots(): Slot[] {
    const out: Slot[] = [];
    for (const d of this.dirs()) for (const [name, child] of this.nodes.get(d)!.entries) out.push({ parent: d, name, child });
    return out;
  }

  private within(dir: string, ancestor: string): boolean {
    if (dir === ancestor) return true;
    const node = this.nodes.get(ancestor)!;
    return [...node.entries.values()].some((c) => this.nodes.get(c)!.kind === 'dir' && this.within(dir, c));
  }

  private touchDir(d: string, now: bigint): void {
    const n = this.nodes.get(d)!;
    n.mtime = n.ctime = now;
  }

  /** The event for `op` against this tree, or null when POSIX would refuse it. */
  plan(op: OpSeed): Planned | null {
    const dirs = this.dirs();
    const slots = this.slots();
    const dir = dirs[op.a % dirs.length];
    const pick = (list: Slot[]): Slot | undefined => (list.length === 0 ? undefined : list[op.a % list.length]);
    const kindOf = (s: Slot): MNode['kind'] => this.nodes.get(s.child)!.kind;
    const ids = [this.root, ...new Set(slots.map((s) => s.child))];
    const any = ids[op.a % ids.length];
    const make = (kind: MNode['kind'], body: EventBody, mode: number, target: string | null): Planned | null => {
      if (this.nodes.get(dir)!.entries.has(op.name)) return null;
      return {
        body,
        commit: (eid, hlc) => {
          const now = hlcToNanoseconds(hlc);
          this.nodes.set(hex(eid), this.node(kind, mode, 1, 2, now, target));
          const d = this.nodes.get(dir)!;
          d.entries.set(op.name, hex(eid));
          if (kind === 'dir') d.nlink++;
          this.touchDir(dir, now);
        },
      };
    };
    const attr = (target: string, body: EventBody, change: (n: MNode, now: bigint) => void): Planned => ({
      body,
      commit: (_eid, hlc) => {
        const n = this.nodes.get(target)!;
        change(n, hlcToNanoseconds(hlc));
        n.ctime = hlcToNanoseconds(hlc);
      },
    });
    switch (op.t) {
      case 'mkdir': return make('dir', { type: 'mkdir', parent: id(dir), name: op.name, mode: op.n, uid: 1, gid: 2 }, op.n, null);
      case 'create': return make('file', { type: 'create', parent: id(dir), name: op.name, mode: op.n, uid: 1, gid: 2 }, op.n, null);
      case 'symlink': return make('symlink', { type: 'symlink', parent: id(dir), name: op.name, target: `t/${op.n}`, uid: 1, gid: 2 }, 0o777, `t/${op.n}`);
      case 'mknod': return make(op.n % 2 ? 'fifo' : 'socket', { type: 'mknod', parent: id(dir), name: op.name, kind: op.n % 2 ? 'fifo' : 'socket', mode: op.n, uid: 1, gid: 2 }, op.n, null);
      case 'write':
      case 'truncate': {
        const s = pick(slots.filter((x) => kindOf(x) === 'file'));
        if (s === undefined) return null;
        const size = op.t === 'write' ? op.bytes.length * 100 : op.n;
        const body: EventBody = op.t === 'write'
          ? { type: 'set-content', inode: id(s.child), size, manifest: Buffer.from(op.bytes) }
          : { type: 'truncate', inode: id(s.child), size };
        return attr(s.child, body, (n, now) => {
          n.size = size;
          if (op.t === 'write') n.manifest = hex(op.bytes);
          n.mtime = now;
        });
      }
      case 'rename': {
        const s = pick(slots);
        if (s === undefined) return null;
        const to = dirs[op.b % dirs.length];
        const moving = this.nodes.get(s.child)!;
        if (moving.kind === 'dir' && this.within(to, s.child)) return null;
        const t = this.nodes.get(to)!.entries.get(op.name);
        if (t === s.child) return null;
        if (t !== undefined) {
          const tn = this.nodes.get(t)!;
          if ((moving.kind === 'dir') !== (tn.kind === 'dir') || tn.entries.size > 0) return null;
        }
        return {
          body: { type: 'rename', inode: id(s.child), parent: id(s.parent), name: s.name, newParent: id(to), newName: op.name },
          commit: (_eid, hlc) => {
            const now = hlcToNanoseconds(hlc);
            const isDir = moving.kind === 'dir';
            const dest = this.nodes.get(to)!;
            if (t !== undefined) {
              const tn = this.nodes.get(t)!;
              tn.nlink = isDir ? 0 : tn.nlink - 1;
              tn.ctime = now;
              if (isDir) dest.nlink--;
            }
            const src = this.nodes.get(s.parent)!;
            src.entries.delete(s.name);
            if (isDir) src.nlink--;
            dest.entries.set(op.name, s.child);
            if (isDir) dest.nlink++;
            this.touchDir(s.parent, now);
            this.touchDir(to, now);
            moving.ctime = now;
          },
        };
      }
      case 'unlink':
      case 'rmdir': {
        const s = pick(slots.filter((x) => (kindOf(x) === 'dir') === (op.t === 'rmdir') && this.nodes.get(x.child)!.entries.size === 0));
        if (s === undefined) return null;
        return {
          body: { type: op.t, inode: id(s.child), parent: id(s.parent), name: s.name },
          commit: (_eid, hlc) => {
            const now = hlcToNanoseconds(hlc);
            const p = this.nodes.get(s.parent)!;
            p.entries.delete(s.name);
            const n = this.nodes.get(s.child)!;
            n.nlink = op.t === 'rmdir' ? 0 : n.nlink - 1;
            n.ctime = now;
            if (op.t === 'rmdir') p.nlink--;
            this.touchDir(s.parent, now);
          },
        };
      }
      case 'link': {
        const s = pick(slots.filter((x) => kindOf(x) !== 'dir'));
        const to = dirs[op.b % dirs.length];
        if (s === undefined || this.nodes.get(to)!.entries.has(op.name)) return null;
        return {
          body: { type: 'link', inode: id(s.child), parent: id(to), name: op.name },
          commit: (_eid, hlc) => {
            const now = hlcToNanoseconds(hlc);
            const n = this.nodes.get(s.child)!;
            n.nlink++;
            n.ctime = now;
            this.nodes.get(to)!.entries.set(op.name, s.child);
            this.touchDir(to, now);
          },
        };
      }
      case 'chmod': return attr(any, { type: 'chmod', inode: id(any), mode: op.n }, (n) => { n.mode = op.n; });
      case 'chown': return attr(any, { type: 'chown', inode: id(any), uid: op.n, gid: null }, (n) => { n.uid = op.n; });
      case 'utimens': return attr(any, { type: 'utimens', inode: id(any), atime: BigInt(op.n), mtime: 'now' }, (n, now) => {
        n.atime = BigInt(op.n);
        n.mtime = now;
      });
      case 'setxattr': return attr(any, { type: 'setxattr', inode: id(any), name: `user.${op.name}`, value: Buffer.from(op.bytes) }, (n) => {
        n.xattrs.set(`user.${op.name}`, hex(op.bytes));
      });
      case 'removexattr': {
        const names = [...this.nodes.get(any)!.xattrs.keys()];
        if (names.length === 0) return null;
        const name = names[op.b % names.length];
        return attr(any, { type: 'removexattr', inode: id(any), name }, (n) => { n.xattrs.delete(name); });
      }
    }
  }

  /** The tree as listTree shows a projection. */
  list(): Listed[] {
    const out: Listed[] = [];
    const visit = (nid: string, path: string): void => {
      const n = this.nodes.get(nid)!;
      out.push({
        path, kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, nlink: n.nlink, mtime: n.mtime, ctime: n.ctime,
        atime: n.atime ?? n.mtime, manifest: n.manifest, target: n.target,
        xattrs: [...n.xattrs].sort((x, y) => Buffer.compare(Buffer.from(x[0]), Buffer.from(y[0]))),
      });
      const names = [...n.entries.keys()].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      for (const name of names) visit(n.entries.get(name)!, `${path}/${name}`);
    };
    visit(this.root, '');
    return out;
  }
}
