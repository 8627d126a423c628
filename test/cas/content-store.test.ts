import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { closeSync, openSync, readSync, readdirSync, statSync, writeSync } from 'node:fs';
import { Readable } from 'node:stream';
import { ContentStore, CHUNK_TYPE, CONTENT_KIND, LocalFileSource } from '../../src/cas/content-store.js';
import { hmacChunkKeyer } from '../../src/cas/chunk-keys.js';
import { sealObject } from '../../src/cas/convergent.js';
import type { Manifest } from '../../src/cas/manifest.js';
import { ErrorCodes, isBazilError, type ErrorCode } from '../../errors/index.js';
import { openSet } from '../arena/helpers.js';
import { MiB, SLOW, SMALL_CHUNKS, keysOf, randomData, splitAt, withStore, withTempDir } from './helpers.js';

async function rejectsCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => isBazilError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));
}

async function readAll(store: ContentStore, manifest: Manifest | null): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of store.stream(manifest)) parts.push(b);
  return Buffer.concat(parts);
}

function* pieces(data: Buffer, step: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += step) yield data.subarray(at, at + step);
}

test('write then read back, as a whole, by stream and by ranges; an empty file has no manifest', async () => {
  await withStore(async (store) => {
    const data = randomData(3 * MiB + 12345, 1);
    const r = await store.writeStream(Readable.from(pieces(data, 100_000)));
    assert.equal(r.size, data.length);
    assert.ok(r.chunks > 20);
    assert.equal(r.dedupedChunks, 0);
    assert.equal(r.newBytes, data.length + 16 * r.chunks);
    assert.ok((await store.read(r.manifestRoot, 0, data.length)).equals(data));
    assert.ok((await readAll(store, r.manifestRoot)).equals(data));
    assert.ok((await store.read(r.manifestRoot, 1000, 70_000)).equals(data.subarray(1000, 71_000)));
    assert.equal((await store.read(r.manifestRoot, data.length - 5, 100)).length, 5, 'a read past the end is short');
    assert.equal((await store.read(r.manifestRoot, data.length + 5, 100)).length, 0);
    const parts: Buffer[] = [];
    for await (const b of store.stream(r.manifestRoot, { offset: 500_000, length: 1_000_000 })) parts.push(b);
    assert.ok(Buffer.concat(parts).equals(data.subarray(500_000, 1_500_000)));

    const empty = await store.writeBuffer(Buffer.alloc(0));
    assert.deepEqual([empty.manifestRoot, empty.size, empty.newBytes, empty.chunks], [null, 0, 0, 0]);
    assert.equal((await store.read(null, 0, 10)).length, 0);
    assert.equal((await readAll(store, null)).length, 0);
  });
});

test('same content twice adds nothing; however it is split into buffers, the manifest is the same', async () => {
  await withStore(async (store, arenas) => {
    const data = randomData(2 * MiB, 2);
    const a = await store.writeBuffer(data);
    const before = arenas.stats().records;
    const b = await store.writeStream(splitAt(data, [1, 77_777, 1_000_000, 1_000_001]));
    assert.equal(b.newBytes, 0);
    assert.equal(b.dedupedChunks, b.chunks);
    assert.equal(arenas.stats().records, before);
    assert.deepEqual(b.manifestRoot, a.manifestRoot);
    // Repeats inside one file dedup too.
    const c = await store.writeBuffer(Buffer.concat([randomData(300_000, 3), randomData(300_000, 3), randomData(300_000, 3)]));
    assert.ok(c.dedupedChunks >= c.chunks / 2, `${c.dedupedChunks} of ${c.chunks}`);
  });
});

test('two volume secrets neither dedup nor share any object', async () => {
  await withTempDir(async (dir) => {
    const arenas = await openSet(dir);
    const a = new ContentStore(arenas, { keys: keysOf('a'), sealWorkers: 0 });
    const b = new ContentStore(arenas, { keys: keysOf('b'), sealWorkers: 0 });
    try {
      const data = randomData(MiB, 4);
      const ra = await a.writeBuffer(data);
      const rb = await b.writeBuffer(data);
      assert.equal(rb.dedupedChunks, 0);
      assert.ok(rb.newBytes >= data.length);
      const ids = (r: typeof ra): Set<string> => new Set([...a.objects(r.manifestRoot)].map((o) => o.id.toString('hex')));
      const idsB = new Set([...b.objects(rb.manifestRoot)].map((o) => o.id.toString('hex')));
      for (const id of ids(ra)) assert.ok(!idsB.has(id));
      assert.ok((await b.read(rb.manifestRoot, 0, data.length)).equals(data));
      // A reader with the wrong volume's keys cannot open the other's chunks.
      const foreign = [...a.objects(ra.manifestRoot)][0];
      assert.throws(() => b.openObject(foreign.id, Buffer.alloc(32)), (e: unknown) => isBazilError(e, ErrorCodes.CORRUPT_OBJECT));
    } finally {
      await a.close();
      await b.close();
      await arenas.close();
    }
  });
});

test('a tampered object never reads back: arena damage, a forged record, a forged import', async () => {
  await withTempDir(async (dir) => {
    const data = randomData(200_000, 5);
    const keys = keysOf('a');
    let manifest: Manifest | null;
    {
      const arenas = await openSet(dir);
      const store = new ContentStore(arenas, { keys, sealWorkers: 0 });
      manifest = (await store.writeBuffer(data)).manifestRoot;
      const first = [...store.objects(manifest)][0];
      const good = store.getSealed(first.id)!;
      // An object from an untrusted store that does not hash to its id is refused before it is stored.
      const bad = Buffer.from(good.sealed);
      bad[7] ^= 0x10;
      assert.throws(() => store.importObject(first.id, CHUNK_TYPE, bad), (e: unknown) => isBazilError(e, ErrorCodes.OBJECT_MISMATCH));
      assert.equal(store.importObject(first.id, CHUNK_TYPE, good.sealed), false);
      await arenas.close();
    }
    // A record whose frame checksum is intact but whose payload was forged (say, by a peer
    // with write access to an arena) fails the GCM tag, or the id check when asked for.
    await withTempDir(async (dir2) => {
      const arenas = await openSet(dir2);
      const store = new ContentStore(arenas, { keys, sealWorkers: 0 });
      try {
        const plain = randomData(50_000, 6);
        const o = sealObject(keys.chunkKey, plain);
        for (const at of [0, 1, 25_000, o.sealed.length - 17, o.sealed.length - 1]) {
          const forged = Buffer.from(o.sealed);
          forged[at] ^= 0x80;
          const extent = { kind: 'chunk' as const, length: plain.length, id: o.id, key: o.key };
          // A fresh arena set per forgery: the id is the same each time.
          await withTempDir(async (dir3) => {
            const set = await openSet(dir3);
            const s = new ContentStore(set, { keys, sealWorkers: 0 });
            set.append(CONTENT_KIND, CHUNK_TYPE, o.id, forged);
            const m: Manifest = { size: plain.length, entries: [extent] };
            await rejectsCode(s.read(m, 0, 10), ErrorCodes.CORRUPT_OBJECT);
            await rejectsCode(s.read(m, 0, 10, { verifyIds: true }), ErrorCodes.OBJECT_MISMATCH);
            await s.close();
            await set.close();
          });
        }
        // Absent objects are a clear NOT_FOUND.
        await rejectsCode(store.read({ size: 5, entries: [{ kind: 'chunk', length: 5, id: o.id, key: o.key }] }, 0, 5), ErrorCodes.NOT_FOUND);
      } finally {
        await store.close();
        await arenas.close();
      }
    });
  });
});

test('a flipped byte in a stored arena file is caught on read with a stable code', async () => {
  await withTempDir(async (dir) => {
    const data = randomData(300_000, 7);
    let manifest: Manifest | null;
    {
      const arenas = await openSet(dir);
      const store = new ContentStore(arenas, { keys: keysOf('a'), sealWorkers: 0 });
      manifest = (await store.writeBuffer(data)).manifestRoot;
      await arenas.sealNow();
      await arenas.close();
    }
    const file = readdirSync(dir).filter((n) => n.endsWith('.arena')).map((n) => `${dir}/${n}`)[0];
    const size = statSync(file).size;
    // Flip bytes inside the records region (past the 128-byte header, before the seal section).
    for (const at of [200, 1000, Math.floor(size / 3), Math.floor(size / 2)]) {
      const fd = openSync(file, 'r+');
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, at);
      b[0] ^= 0x01;
      writeSync(fd, b, 0, 1, at);
      closeSync(fd);
      const arenas = await openSet(dir);
      const store = new ContentStore(arenas, { keys: keysOf('a'), sealWorkers: 0, cacheBytes: 0 });
      try {
        await assert.rejects(store.read(manifest, 0, data.length), (e: unknown) =>
          isBazilError(e) && ([ErrorCodes.CORRUPT_RECORD, ErrorCodes.CORRUPT_OBJECT] as string[]).includes(e.code));
      } finally {
        await store.close();
        await arenas.close();
      }
      // Undo, so each flip is tested alone.
      const fd2 = openSync(file, 'r+');
      b[0] ^= 0x01;
      writeSync(fd2, b, 0, 1, at);
      closeSync(fd2);
    }
  });
});

test('zeros and sparse regions store nothing: a 100 MiB zero file, a 1 TiB hole', async () => {
  await withStore(async (store, arenas) => {
    const zeros = Buffer.alloc(MiB);
    const size = (SLOW ? 1024 : 100) * MiB;
    const r = await store.writeStream((function* () {
      for (let at = 0; at < size; at += MiB) yield zeros;
    })());
    assert.equal(r.size, size);
    assert.equal(r.chunks, 0);
    assert.equal(r.newBytes, 0);
    assert.equal(r.holeBytes, size);
    assert.deepEqual(r.manifestRoot!.entries, [{ kind: 'hole', length: size }]);
    assert.ok((await store.read(r.manifestRoot, 12345, 100_000)).equals(Buffer.alloc(100_000)));

    const w = store.createWriter();
    const head = randomData(100_000, 8);
    await w.write(head);
    await w.hole(2 ** 40);
    await w.write(head);
    const s = await w.finish();
    assert.equal(s.size, 2 ** 40 + 200_000);
    assert.ok(s.newBytes < 250_000);
    assert.ok((await store.read(s.manifestRoot, 0, 100_000)).equals(head));
    assert.ok((await store.read(s.manifestRoot, 2 ** 39, 1000)).equals(Buffer.alloc(1000)));
    assert.ok((await store.read(s.manifestRoot, 2 ** 40 + 100_000, 100_000)).equals(head));
    const mixed = await store.read(s.manifestRoot, 90_000, 20_000);
    assert.ok(mixed.equals(Buffer.concat([head.subarray(90_000), Buffer.alloc(10_000)])));
    assert.ok(arenas.stats().fileBytes < MiB);
  });
});

test('manifest trees: many chunks with a small node size read back at any range', async () => {
  await withStore(async (store) => {
    const data = Buffer.concat([randomData(200_000, 9), Buffer.alloc(30_000), randomData(100_000, 10)]);
    const r = await store.writeStream(pieces(data, 10_000));
    const root = r.manifestRoot!;
    assert.ok(root.entries.length <= 4);
    assert.ok(root.entries.every((e) => e.kind === 'node'), 'a multi-level tree');
    const objects = [...store.objects(root)];
    assert.ok(objects.filter((o) => o.kind === 'node').length > 50);
    assert.ok((await readAll(store, root)).equals(data));
    await fc.assert(fc.asyncProperty(fc.nat(data.length + 100), fc.nat(40_000), async (offset, length) => {
      const got = await store.read(root, offset, length);
      assert.ok(got.equals(data.subarray(offset, offset + length)));
    }), { numRuns: 200 });
    // The same content in another file shares the whole tree.
    const again = await store.writeBuffer(data);
    assert.equal(again.newBytes, 0);
    assert.deepEqual(again.manifestRoot, root);
  }, { chunking: SMALL_CHUNKS, maxNodeEntries: 4 });
});

test('seal workers produce the very objects and manifest the calling thread does', async () => {
  const data = Buffer.concat([randomData(9 * MiB, 11), Buffer.alloc(MiB), randomData(3 * MiB, 12)]);
  const inline = await withStore((store) => store.writeStream(pieces(data, 3 * MiB)));
  await withStore(async (store, arenas) => {
    const pooled = await store.writeStream(pieces(data, 3 * MiB));
    assert.deepEqual(pooled.manifestRoot, inline.manifestRoot);
    assert.deepEqual([pooled.newBytes, pooled.chunks, pooled.holeBytes], [inline.newBytes, inline.chunks, inline.holeBytes]);
    assert.ok((await readAll(store, pooled.manifestRoot)).equals(data));
    assert.deepEqual(arenas.verify(), []);
  }, { sealWorkers: 1 });
});

test('an AbortSignal stops writes and reads with BAZIL_ABORTED', async () => {
  await withStore(async (store) => {
    const data = randomData(4 * MiB, 13);
    const aborted = AbortSignal.abort();
    await rejectsCode(store.writeBuffer(data, { signal: aborted }), ErrorCodes.ABORTED);
    const r = await store.writeBuffer(data);
    await rejectsCode(store.read(r.manifestRoot, 0, 10, { signal: aborted }), ErrorCodes.ABORTED);
    await rejectsCode((async () => {
      for await (const b of store.stream(r.manifestRoot, { signal: aborted })) assert.ok(b);
    })(), ErrorCodes.ABORTED);
    // Mid-stream: the source aborts after its third buffer.
    for (const sealWorkers of [0, 1]) {
      const s = new ContentStore(store.arenas, { keys: keysOf('c'), sealWorkers });
      const controller = new AbortController();
      let yielded = 0;
      const source = (function* () {
        for (const p of pieces(data, 256 * 1024)) {
          if (++yielded === 3) controller.abort();
          yield p;
        }
      })();
      await rejectsCode(s.writeStream(source, { signal: controller.signal }), ErrorCodes.ABORTED);
      assert.ok(yielded < 16, 'the write stopped early');
      await s.close();
    }
    // Mid-read of a long stream.
    const controller = new AbortController();
    let n = 0;
    await rejectsCode((async () => {
      for await (const b of store.stream(r.manifestRoot, { signal: controller.signal })) {
        assert.ok(b);
        if (++n === 2) controller.abort();
      }
    })(), ErrorCodes.ABORTED);
  });
});

test('bad arguments and misuse get stable codes', async () => {
  await withStore(async (store) => {
    await rejectsCode(store.read(null, -1, 10), ErrorCodes.BAD_ARGUMENT);
    await rejectsCode(store.read(null, 0, 1.5), ErrorCodes.BAD_ARGUMENT);
    await rejectsCode(store.writeStream(['text' as unknown as Uint8Array]), ErrorCodes.BAD_ARGUMENT);
    const w = store.createWriter();
    await w.write(Buffer.from('x'));
    await w.finish();
    await rejectsCode(w.write(Buffer.from('y')), ErrorCodes.CLOSED);
    assert.throws(() => new ContentStore(store.arenas, { keys: keysOf('a'), chunking: { avgSize: 3000 } }), (e: unknown) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
    assert.throws(() => store.openObject(Buffer.alloc(3), Buffer.alloc(32)), (e: unknown) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
  });
});

test('a local file read straight into the slabs gives the manifest a stream gives; a short or missing file is handled', async () => {
  for (const sealWorkers of [0, 1]) {
    await withStore(async (store, _arenas, dir) => {
      const { join } = await import('node:path');
      const { writeFile } = await import('node:fs/promises');
      // Past two slabs, with a hole in the middle (all-zero chunks store nothing).
      const data = Buffer.concat([randomData(3 * MiB, 7), Buffer.alloc(MiB), randomData(MiB + 333, 8)]);
      const path = join(dir, 'f.bin');
      await writeFile(path, data);
      const fromFile = await store.writeStream(new LocalFileSource(path, data.length));
      const fromBuffer = await store.writeBuffer(data);
      assert.deepEqual(fromFile.manifestRoot, fromBuffer.manifestRoot, `sealWorkers ${sealWorkers}`);
      assert.equal(fromFile.size, data.length);
      assert.ok(fromFile.holeBytes >= 512 * 1024);
      assert.ok((await readAll(store, fromFile.manifestRoot)).equals(data));

      // A file that shrank since its size was taken is read to its end; one that grew, to the size given.
      const short = await store.writeStream(new LocalFileSource(path, data.length + 1000));
      assert.equal(short.size, data.length);
      const prefix = await store.writeStream(new LocalFileSource(path, 1000));
      assert.ok((await readAll(store, prefix.manifestRoot)).equals(data.subarray(0, 1000)));

      await rejectsCode(store.writeStream(new LocalFileSource(join(dir, 'missing'), 10)), ErrorCodes.NOT_FOUND);
      await rejectsCode(store.writeStream(new LocalFileSource(dir, 10)), ErrorCodes.IO);
      // The store still works after the failures.
      assert.equal((await store.writeBuffer(Buffer.from('after'))).size, 5);
    }, { sealWorkers, sealSlabs: 2 });
  }
});

test('a local file no longer than the smallest chunk, sealed on the calling thread, is the object a seal worker makes', async () => {
  await withStore(async (store, _arenas, dir) => {
    const { join } = await import('node:path');
    const { writeFile } = await import('node:fs/promises');
    const minSize = 16 * 1024;
    const sizes = [1, 100, 4096, minSize - 1, minSize, minSize + 1, 3 * minSize];
    for (const size of sizes) {
      const data = randomData(size, size);
      const path = join(dir, `f${size}`);
      await writeFile(path, data);
      const fromFile = await store.writeStream(new LocalFileSource(path, size));
      // The same bytes through the worker (a buffer always goes to it when there is a pool).
      const viaWorker = await store.writeBuffer(data);
      assert.deepEqual(fromFile.manifestRoot, viaWorker.manifestRoot, `${size} bytes`);
      if (size <= minSize) assert.equal(fromFile.newBytes, size + 16, `${size} bytes: one new object`);
      assert.equal(viaWorker.newBytes, 0, `${size} bytes: nothing new through the worker`);
      assert.ok((await readAll(store, fromFile.manifestRoot)).equals(data));
    }
    // All zeros: a hole, nothing stored, either way.
    await writeFile(join(dir, 'zeros'), Buffer.alloc(5000));
    const zeros = await store.writeStream(new LocalFileSource(join(dir, 'zeros'), 5000));
    assert.equal(zeros.newBytes, 0);
    assert.deepEqual(zeros.manifestRoot, (await store.writeBuffer(Buffer.alloc(5000))).manifestRoot);
    // Shrunk since its size was taken: read to its end; grown: to the size given.
    await writeFile(join(dir, 'short'), Buffer.from('abc'));
    assert.equal((await store.writeStream(new LocalFileSource(join(dir, 'short'), 10))).size, 3);
    assert.ok((await readAll(store, (await store.writeStream(new LocalFileSource(join(dir, 'short'), 2))).manifestRoot)).equals(Buffer.from('ab')));
    await rejectsCode(store.writeStream(new LocalFileSource(join(dir, 'missing'), 10)), ErrorCodes.NOT_FOUND);
  }, { sealWorkers: 1, sealSlabs: 2 });
});

test('chunks learned from a held manifest are found without sealing; a hint for objects not held is sealed anyway', async () => {
  await withStore(async (store, arenas) => {
    const data = randomData(3 * MiB, 11);
    const first = await store.writeBuffer(data);
    // A manifest of other content, stored elsewhere: its objects are not held here.
    const other = randomData(MiB + 7, 12);
    const elsewhere = await withStore(async (s) => (await s.writeBuffer(other)).manifestRoot);

    // A new store over the same arenas: its seal workers have seen nothing.
    const again = new ContentStore(arenas, { keys: keysOf('a'), sealWorkers: 1 });
    try {
      again.knowChunks(first.manifestRoot);
      again.knowChunks(null);
      const r = await again.writeBuffer(data);
      assert.deepEqual(r.manifestRoot, first.manifestRoot);
      assert.equal(r.newBytes, 0);
      assert.equal(r.dedupedChunks, r.chunks);

      again.knowChunks(elsewhere);
      const o = await again.writeBuffer(other);
      assert.deepEqual(o.manifestRoot, elsewhere);
      assert.ok(o.newBytes > other.length, `${o.newBytes} bytes appended for a hint whose objects were not held`);
      assert.ok((await readAll(again, o.manifestRoot)).equals(other));
    } finally {
      await again.close();
    }
  });
});

test('a slab sealer told chunk key → id pairs returns those chunks as known (plaintext), the rest sealed', async () => {
  const { SlabSealer } = await import('../../src/cas/seal-batch.js');
  const { Chunker, chunkerParams } = await import('../../src/cas/chunker.js');
  const { gearTable } = await import('../../src/cas/gear.js');
  const keys = keysOf('a');
  const params = chunkerParams(SMALL_CHUNKS);
  const gear = gearTable(keys.gearKey);
  const data = randomData(64 * 1024, 13);
  const sealerOf = (): InstanceType<typeof SlabSealer> => new SlabSealer(hmacChunkKeyer(keys.chunkKey), () => new Chunker(gear, params), params.maxSize, 1000);
  const output = new Uint8Array(2 * data.length);
  const sealed = sealerOf().run(0, data, true, output);
  assert.ok(sealed.fresh.every((f) => f === 1));
  const n = sealed.fresh.length;
  // Learn every other chunk.
  const half = [...Array(n).keys()].filter((i) => i % 2 === 0);
  const pick = (all: Buffer, i: number): Buffer => all.subarray(i * 32, (i + 1) * 32);
  const taught = sealerOf();
  taught.know(Buffer.concat(half.map((i) => pick(sealed.keys, i))), Buffer.concat(half.map((i) => pick(sealed.ids, i))));
  const again = taught.run(0, data, true, output);
  // A known chunk inside the input is left there (2, at inputAt), not copied to the output.
  assert.deepEqual([...again.fresh], [...Array(n).keys()].map((i) => (i % 2 === 0 ? 2 : 1)));
  assert.ok(again.ids.equals(sealed.ids));
  assert.ok(again.keys.equals(sealed.keys));
  let at = 0;
  let outAt = 0;
  for (let i = 0; i < n; i++) {
    const length = again.items[i]!;
    if (i % 2 === 0) {
      assert.equal(again.inputAt[i], at);
    } else {
      assert.equal(again.inputAt[i], -1);
      outAt += length + 16;
    }
    at += length;
  }
  assert.equal(again.output.length, outAt, 'the output holds only the sealed chunks');
  // Fed in pieces, a chunk that spans two inputs is assembled by the chunker: its plaintext is copied to the output (0).
  const pieces = taught.run(1, data.subarray(0, 200), false, output);
  assert.equal(pieces.items.length, 0);
  const rest = taught.run(1, data.subarray(200), true, output);
  assert.equal(rest.fresh[0], 0);
  assert.equal(rest.inputAt[0], -1);
  assert.ok(rest.output.subarray(0, rest.items[0]!).equals(data.subarray(0, rest.items[0]!)));
});
