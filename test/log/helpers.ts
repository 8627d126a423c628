// Shared helpers of the log tests: fixed identities and keys, one sample of
// every event type, and fast-check arbitraries of valid bodies.

import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { signerFromSeed, type Signer } from '../../src/log/signing.js';
import { textProblem, type TextRule } from '../../src/log/names.js';
import type { EventBody, EventId, TimeSpec } from '../../src/log/event.js';

export { withTempDir } from '../arena/helpers.js';

export function bytesOf(label: string): Buffer {
  return createHash('sha256').update(label).digest();
}

export const VOLUME = bytesOf('test volume');
export const EVENT_KEY = deriveVolumeKeys(bytesOf('test secret'), VOLUME).eventKey;
export const OTHER_KEY = deriveVolumeKeys(bytesOf('another secret'), VOLUME).eventKey;

export function signerNamed(name: string): Signer {
  return signerFromSeed(bytesOf(`seed ${name}`));
}

export const ALICE = signerNamed('alice');
export const BOB = signerNamed('bob');
export const CAROL = signerNamed('carol');

const A = bytesOf('inode a');
const B = bytesOf('inode b');
const C = bytesOf('inode c');

/** One body of every type, with edge values, and some types twice (optional fields present and absent). */
export function sampleBodies(): EventBody[] {
  return [
    { type: 'create-volume', label: 'Photos ☀', mode: 0o755, uid: 1000, gid: 1000 },
    { type: 'create-volume', label: '', mode: 0, uid: 0, gid: 0 },
    { type: 'create-volume', label: 'new', mode: 0o755, uid: 0, gid: 0, content: 2 },
    { type: 'mkdir', parent: A, name: 'dir', mode: 0o750, uid: 0xffff_ffff, gid: 0 },
    { type: 'mkdir', parent: A, name: 'é'.repeat(127), mode: 0o7777, uid: 1, gid: 2, mtime: 1_700_000_000_123_456_789n },
    { type: 'create', parent: B, name: 'file.txt', mode: 0o644, uid: 1000, gid: 100 },
    { type: 'create', parent: B, name: 'x'.repeat(255), mode: 0o600, uid: 0, gid: 0, mtime: -5n },
    { type: 'create', parent: B, name: 'born-full', mode: 0o644, uid: 1, gid: 2, mtime: 7n, size: 70_000, manifest: Buffer.from([1, 2, 3]) },
    { type: 'set-content', inode: C, size: 0, manifest: null },
    { type: 'set-content', inode: C, size: Number.MAX_SAFE_INTEGER, manifest: Buffer.from('a manifest, opaque here') },
    { type: 'truncate', inode: C, size: 4096 },
    { type: 'rename', inode: C, parent: A, name: 'old', newParent: B, newName: 'new' },
    { type: 'unlink', inode: C, parent: A, name: 'gone' },
    { type: 'rmdir', inode: B, parent: A, name: 'dir' },
    { type: 'link', inode: C, parent: B, name: 'hard link' },
    { type: 'symlink', parent: A, name: 'ln', target: '../some/where/ünïcode', uid: 5, gid: 6 },
    { type: 'symlink', parent: A, name: 'ln2', target: '/'.repeat(4095), uid: 5, gid: 6, mtime: (1n << 63n) - 1n },
    { type: 'mknod', parent: A, name: 'pipe', kind: 'fifo', mode: 0o644, uid: 0, gid: 0 },
    { type: 'mknod', parent: A, name: 'sock', kind: 'socket', mode: 0o755, uid: 0, gid: 0, mtime: -(1n << 63n) },
    { type: 'chmod', inode: C, mode: 0o4755 },
    { type: 'chown', inode: C, uid: 7, gid: null },
    { type: 'chown', inode: C, uid: null, gid: 0xffff_ffff },
    { type: 'utimens', inode: C, atime: null, mtime: 'now' },
    { type: 'utimens', inode: C, atime: 1_600_000_000_000_000_000n, mtime: -1n },
    { type: 'setxattr', inode: C, name: 'user.comment', value: Buffer.from('hello') },
    { type: 'setxattr', inode: C, name: 'user.empty', value: Buffer.alloc(0) },
    { type: 'removexattr', inode: C, name: 'user.comment' },
    { type: 'snapshot', name: 'before upgrade' },
    { type: 'snapshot-rm', name: 'before upgrade' },
    { type: 'pin', inode: A },
    { type: 'unpin', inode: A },
    { type: 'placement', inode: A, stores: ['home-nas', 's3-backup'] },
    { type: 'placement', inode: A, stores: [] },
    { type: 'clone', inode: A, parent: B, name: 'a copy' },
  ];
}

const id = (): fc.Arbitrary<EventId> => fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
const text = (rule: TextRule, maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: 'binary', minLength: rule === 'label' ? 0 : 1, maxLength }).filter((s) => textProblem(rule, s) === null);
const name = (): fc.Arbitrary<string> => text('name', 40);
const u32 = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 0xffff_ffff });
const mode = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 0o7777 });
const time = (): fc.Arbitrary<bigint> => fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const timeSpec = (): fc.Arbitrary<TimeSpec> => fc.oneof(time(), fc.constant<'now'>('now'), fc.constant(null));
const size = (): fc.Arbitrary<number> => fc.oneof(fc.integer({ min: 0, max: 1 << 30 }), fc.constant(Number.MAX_SAFE_INTEGER));
const withMtime = <T extends object>(a: fc.Arbitrary<T>): fc.Arbitrary<T & { mtime?: bigint }> =>
  fc.tuple(a, fc.option(time(), { nil: undefined })).map(([b, m]) => (m === undefined ? b : { ...b, mtime: m }));

/** Any valid body (as a plain object: fast-check's records may lack a prototype, which deepEqual notices). */
export function arbBody(): fc.Arbitrary<EventBody> {
  return fc.oneof<fc.Arbitrary<EventBody>[]>(
    fc.record(
      { type: fc.constant('create-volume' as const), label: text('label', 20), mode: mode(), uid: u32(), gid: u32(), content: fc.constantFrom(1 as const, 2 as const) },
      { requiredKeys: ['type', 'label', 'mode', 'uid', 'gid'] },
    ),
    withMtime(fc.record({ type: fc.constant('mkdir' as const), parent: id(), name: name(), mode: mode(), uid: u32(), gid: u32() })),
    withMtime(fc.record({ type: fc.constant('create' as const), parent: id(), name: name(), mode: mode(), uid: u32(), gid: u32() })),
    fc.record({ type: fc.constant('set-content' as const), inode: id(), size: size(), manifest: fc.option(fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b)), { nil: null }) }),
    fc.record({ type: fc.constant('truncate' as const), inode: id(), size: size() }),
    fc.record({ type: fc.constant('rename' as const), inode: id(), parent: id(), name: name(), newParent: id(), newName: name() }),
    fc.record({ type: fc.constant('unlink' as const), inode: id(), parent: id(), name: name() }),
    fc.record({ type: fc.constant('rmdir' as const), inode: id(), parent: id(), name: name() }),
    fc.record({ type: fc.constant('link' as const), inode: id(), parent: id(), name: name() }),
    withMtime(fc.record({ type: fc.constant('symlink' as const), parent: id(), name: name(), target: text('symlink-target', 60), uid: u32(), gid: u32() })),
    withMtime(fc.record({ type: fc.constant('mknod' as const), parent: id(), name: name(), kind: fc.constantFrom('fifo' as const, 'socket' as const), mode: mode(), uid: u32(), gid: u32() })),
    fc.record({ type: fc.constant('chmod' as const), inode: id(), mode: mode() }),
    fc.record({ type: fc.constant('chown' as const), inode: id(), uid: fc.option(u32(), { nil: null }), gid: fc.option(u32(), { nil: null }) })
      .filter((b) => b.uid !== null || b.gid !== null),
    fc.record({ type: fc.constant('utimens' as const), inode: id(), atime: timeSpec(), mtime: timeSpec() })
      .filter((b) => b.atime !== null || b.mtime !== null),
    fc.record({ type: fc.constant('setxattr' as const), inode: id(), name: text('xattr-name', 30), value: fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)) }),
    fc.record({ type: fc.constant('removexattr' as const), inode: id(), name: text('xattr-name', 30) }),
    fc.record({ type: fc.constant('snapshot' as const), name: name() }),
    fc.record({ type: fc.constant('snapshot-rm' as const), name: name() }),
    fc.record({ type: fc.constant('pin' as const), inode: id() }),
    fc.record({ type: fc.constant('unpin' as const), inode: id() }),
    fc.record({ type: fc.constant('placement' as const), inode: id(), stores: fc.uniqueArray(name(), { maxLength: 4 }).map((s) => s.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))) }),
    fc.record({ type: fc.constant('clone' as const), inode: id(), parent: id(), name: name() }),
  ).map((b) => ({ ...b }));
}
