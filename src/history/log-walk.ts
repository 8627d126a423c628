// The log newest first, for `bazil log`: the merge order (hlc, writer, seq)
// walked backwards, one writer's stream at a time from its tip, so showing
// the last few events of a long log reads only those events.

import { BazilError, ErrorCodes, isBazilError } from '../../errors/index.js';
import { compareCausal } from '../log/causal-merge.js';
import type { Envelope } from '../log/codec.js';
import type { EventBody } from '../log/event.js';
import type { LogStore } from '../log/stream.js';

export interface LogEntry {
  /** The event's place in the merge order, from 1: `@position` is the state just after it. */
  position: bigint;
  id: Buffer;
  writer: Buffer;
  seq: bigint;
  hlc: bigint;
  /** null when the body does not open (noted as rejected by the projection). */
  body: EventBody | null;
}

/** Every event, newest first in the merge order, with its position. */
export function* newestFirst(log: LogStore, signal?: AbortSignal): Generator<LogEntry> {
  const heads: { writer: Buffer; seq: bigint; env: Envelope }[] = [];
  let position = 0n;
  for (const [writer, seq] of log.versionVector().pairs()) {
    position += seq;
    const env = at(log, writer, seq);
    if (env !== undefined) heads.push({ writer, seq, env });
  }
  while (heads.length > 0) {
    if (signal?.aborted === true) throw new BazilError(ErrorCodes.ABORTED, 'log walk aborted');
    let top = 0;
    for (let i = 1; i < heads.length; i++) if (compareCausal(heads[i]!.env, heads[top]!.env) > 0) top = i;
    const head = heads[top]!;
    yield { position, id: head.env.id, writer: head.env.writer, seq: head.env.seq, hlc: head.env.hlc, body: openBody(log, head.env) };
    position--;
    head.seq--;
    const prev = head.seq > 0n ? at(log, head.writer, head.seq) : undefined;
    if (prev === undefined) heads.splice(top, 1);
    else head.env = prev;
  }
}

function at(log: LogStore, writer: Buffer, seq: bigint): Envelope | undefined {
  const it = log.read(writer, seq);
  const r = it.next();
  it.return(undefined);
  return r.done || r.value.seq !== seq ? undefined : r.value;
}

function openBody(log: LogStore, env: Envelope): EventBody | null {
  try {
    return log.open(env).body;
  } catch (err) {
    if (isBazilError(err, ErrorCodes.CORRUPT_EVENT) || isBazilError(err, ErrorCodes.DECRYPT_FAILED) || isBazilError(err, ErrorCodes.UNSUPPORTED_FORMAT)) return null;
    throw err;
  }
}

/** Whether the event concerns the inode `id`: made it, changed it, or changed an entry in it (for a directory). */
export function concerns(entry: LogEntry, id: Uint8Array): boolean {
  if (entry.id.equals(id)) return true;
  const b = entry.body;
  if (b === null) return false;
  const eq = (x: Uint8Array): boolean => Buffer.compare(x, id) === 0;
  return ('inode' in b && eq(b.inode)) || ('parent' in b && eq(b.parent)) || ('newParent' in b && eq(b.newParent));
}

/**
 * One line about the event. `pathOf` names inodes (a path in the current
 * tree) where it can; others are shown by the first 8 hex digits of their id.
 */
export function summarize(entry: LogEntry, pathOf: (id: Uint8Array) => string | undefined): string {
  const b = entry.body;
  if (b === null) return 'event whose body does not open (rejected)';
  const node = (id: Uint8Array): string => pathOf(id) ?? `#${Buffer.from(id).subarray(0, 4).toString('hex')}`;
  const inDir = (parent: Uint8Array, name: string): string => {
    const p = pathOf(parent);
    return p === undefined ? `${name} in ${node(parent)}` : `${p === '/' ? '' : p}/${name}`;
  };
  const mode = (m: number): string => m.toString(8).padStart(4, '0');
  switch (b.type) {
    case 'create-volume': return `create volume${b.label === '' ? '' : ` '${b.label}'`} (root ${mode(b.mode)}${b.content === undefined ? '' : `, content format ${b.content}`})`;
    case 'mkdir': return `mkdir ${inDir(b.parent, b.name)}`;
    case 'create': return `create ${inDir(b.parent, b.name)}${b.size === undefined ? '' : ` (${b.size} bytes)`}`;
    case 'symlink': return `symlink ${inDir(b.parent, b.name)} -> ${b.target}`;
    case 'mknod': return `mknod ${b.kind} ${inDir(b.parent, b.name)}`;
    case 'link': return `link ${inDir(b.parent, b.name)} to ${node(b.inode)}`;
    case 'set-content': return `write ${node(b.inode)} (${b.size} bytes)`;
    case 'truncate': return `truncate ${node(b.inode)} to ${b.size} bytes`;
    case 'rename': return `rename ${inDir(b.parent, b.name)} -> ${inDir(b.newParent, b.newName)}`;
    case 'unlink': return `unlink ${inDir(b.parent, b.name)}`;
    case 'rmdir': return `rmdir ${inDir(b.parent, b.name)}`;
    case 'chmod': return `chmod ${mode(b.mode)} ${node(b.inode)}`;
    case 'chown': return `chown ${b.uid ?? '-'}:${b.gid ?? '-'} ${node(b.inode)}`;
    case 'utimens': return `set times of ${node(b.inode)}`;
    case 'setxattr': return `setxattr ${b.name} on ${node(b.inode)}`;
    case 'removexattr': return `removexattr ${b.name} from ${node(b.inode)}`;
    case 'snapshot': return `snapshot ${b.name}`;
    case 'snapshot-rm': return `remove snapshot ${b.name}`;
    case 'pin': return `pin ${node(b.inode)}`;
    case 'unpin': return `unpin ${node(b.inode)}`;
    case 'placement': return `place ${node(b.inode)} on ${b.stores.join(', ') || 'no store'}`;
    case 'clone': return `copy ${node(b.inode)} to ${inDir(b.parent, b.name)}`;
  }
}
