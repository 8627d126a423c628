// An fsx-style model test of open files: random writes, reads, truncates,
// flushes, fsyncs and reopens over several handles on two files, checked
// against Buffers after every step, after a reopen of the volume, after a
// rebuild of the projection, and by fsck.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { boundedShrink } from '../lib/property.js';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume, type FileHandle } from '../../src/volume/volume.js';

const SLOW = process.env.BAZIL_SLOW === '1';
const FILES = ['/a', '/d/b'];
const SLOTS = 4;
const MAX_OFFSET = 300_000;

type Op =
  | { op: 'write'; slot: number; offset: number; length: number; seed: number; zeros: boolean }
  | { op: 'read'; slot: number; offset: number; length: number }
  | { op: 'truncate'; slot: number; size: number }
  | { op: 'path-truncate'; file: number; size: number }
  | { op: 'flush' | 'fsync'; slot: number }
  | { op: 'reopen'; slot: number; file: number; append: boolean; truncate: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('write' as const), slot: fc.nat(SLOTS - 1), offset: fc.nat(MAX_OFFSET), length: fc.integer({ min: 1, max: 90_000 }), seed: fc.nat(), zeros: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const), slot: fc.nat(SLOTS - 1), offset: fc.nat(MAX_OFFSET + 100_000), length: fc.nat(200_000) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), slot: fc.nat(SLOTS - 1), size: fc.nat(MAX_OFFSET + 50_000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('path-truncate' as const), file: fc.nat(FILES.length - 1), size: fc.nat(MAX_OFFSET) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('flush' as const, 'fsync' as const), slot: fc.nat(SLOTS - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const), slot: fc.nat(SLOTS - 1), file: fc.nat(FILES.length - 1), append: fc.boolean(), truncate: fc.boolean() }) },
);

function bytes(length: number, seed: number, zeros: boolean): Buffer {
  if (zeros) return Buffer.alloc(length);
  const key = createHash('sha256').update(`model ${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function resized(b: Buffer, size: number): Buffer {
  if (size <= b.length) return Buffer.from(b.subarray(0, size));
  return Buffer.concat([b, Buffer.alloc(size - b.length)]);
}

interface Slot {
  handle: FileHandle;
  file: number;
  append: boolean;
}

async function checkAll(v: Volume, model: Buffer[], when: string): Promise<void> {
  for (let f = 0; f < FILES.length; f++) {
    const got = await v.readFile(FILES[f]!);
    assert.ok(got.equals(model[f]!), `${FILES[f]} ${when}: ${got.length} bytes, model ${model[f]!.length}`);
    assert.equal((await v.stat(FILES[f]!)).size, model[f]!.length, `${FILES[f]} size ${when}`);
  }
}

/**
 * With `overlap`, writes, reads and handle truncates are issued without
 * waiting for the previous call (their effects happen in call order, and
 * spills run in the background between them); everything is awaited and
 * checked at the other operations and every few steps.
 */
async function run(ops: readonly Op[], spillBytes: number | null, overlap = false): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-handles-model-'));
  try {
    const homeDir = join(dir, 'home');
    const { home } = await initHome(homeDir);
    await createVolume(home, 'v').finally(() => home.close());
    let v = await Volume.open(homeDir, 'v');
    if (spillBytes !== null) v.setOpenFileLimits({ fileBytes: spillBytes, volumeBytes: 2 * spillBytes });
    const model: Buffer[] = FILES.map(() => Buffer.alloc(0));
    try {
      await v.mkdir('/d');
      const slots: Slot[] = [];
      for (let s = 0; s < SLOTS; s++) {
        const file = s % FILES.length;
        slots.push({ handle: await v.create(FILES[file]!, { read: true, write: true }), file, append: false });
      }
      const pending: Promise<void>[] = [];
      const settle = async (): Promise<void> => {
        await Promise.all(pending.splice(0));
      };
      for (const [i, o] of ops.entries()) {
        const step = `after step ${i} (${o.op})`;
        if (!overlap || !['write', 'read', 'truncate'].includes(o.op)) await settle();
        switch (o.op) {
          case 'write': {
            const s = slots[o.slot]!;
            const data = bytes(o.length, o.seed, o.zeros);
            const at = s.append ? model[s.file]!.length : o.offset;
            pending.push(s.handle.write(o.offset, data).then((n) => assert.equal(n, data.length)));
            const m = resized(model[s.file]!, Math.max(model[s.file]!.length, at + data.length));
            data.copy(m, at);
            model[s.file] = m;
            break;
          }
          case 'read': {
            const s = slots[o.slot]!;
            const m = model[s.file]!;
            const want = Buffer.from(m.subarray(Math.min(o.offset, m.length), Math.min(m.length, o.offset + o.length)));
            pending.push(s.handle.read(o.offset, o.length).then((got) => assert.ok(got.equals(want), `read ${step}`)));
            break;
          }
          case 'truncate': {
            const s = slots[o.slot]!;
            pending.push(s.handle.truncate(o.size));
            model[s.file] = resized(model[s.file]!, o.size);
            break;
          }
          case 'path-truncate':
            await v.truncate(FILES[o.file]!, o.size);
            model[o.file] = resized(model[o.file]!, o.size);
            break;
          case 'flush':
            await slots[o.slot]!.handle.flush();
            break;
          case 'fsync':
            await slots[o.slot]!.handle.fsync();
            break;
          case 'reopen': {
            await slots[o.slot]!.handle.release();
            slots[o.slot] = {
              handle: await v.open(FILES[o.file]!, { read: true, write: true, append: o.append, truncate: o.truncate }),
              file: o.file, append: o.append,
            };
            if (o.truncate) model[o.file] = Buffer.alloc(0);
            break;
          }
        }
        if (!overlap || pending.length >= 4) {
          await settle();
          await checkAll(v, model, step);
        }
      }
      await settle();
      for (const s of slots) await s.handle.release();
      assert.deepEqual(v.openFileStats(), { files: 0, dirtyBytes: 0 });
      await checkAll(v, model, 'after every release');
    } finally {
      await v.close();
    }
    v = await Volume.open(homeDir, 'v');
    try {
      await checkAll(v, model, 'after a reopen');
      await v.rebuild();
      await checkAll(v, model, 'after a rebuild');
      const report = await v.fsck();
      assert.ok(report.ok, JSON.stringify(report.problems));
    } finally {
      await v.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('random writes, reads, truncates and flushes over several handles agree with a Buffer model', async () => {
  await fc.assert(fc.asyncProperty(boundedShrink(fc.array(opArb, { minLength: 1, maxLength: SLOW ? 80 : 25 })), (ops) => run(ops, null)), { numRuns: SLOW ? 60 : 8 });
});

test('the same with tiny spill limits: dirty pages go to the content store between flushes', async () => {
  await fc.assert(fc.asyncProperty(
    boundedShrink(fc.array(opArb, { minLength: 1, maxLength: SLOW ? 80 : 25 })), fc.constantFrom(32 * 1024, 96 * 1024, 256 * 1024),
    (ops, spill) => run(ops, spill)), { numRuns: SLOW ? 60 : 8 });
});

test('the same with calls overlapping: writes, reads and truncates issued while spills run in the background', async () => {
  await fc.assert(fc.asyncProperty(
    fc.array(opArb, { minLength: 1, maxLength: SLOW ? 80 : 30 }), fc.constantFrom(32 * 1024, 128 * 1024),
    (ops, spill) => run(ops, spill, true)), { numRuns: SLOW ? 60 : 8 });
});
