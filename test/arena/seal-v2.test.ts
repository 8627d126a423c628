// Arena format 2: a record's key-table digest is taken when it is appended
// (from the payload hash the caller gives, or computed then), so sealing
// reads back only the records an earlier process appended. Whichever way
// the digests were found, the sealed arena is the same file; a payload hash
// that lies is caught by verify; and an active arena begun in format 1 by an
// earlier build is sealed in format 2.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../../errors/index.js';
import { FORMAT_VERSION } from '../../arena/format.js';
import { openArenaSet } from '../../migrations/index.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { keyOf, openSet, payloadOf, withTempDir } from './helpers.js';

const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

function sealedFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.arena')).sort();
}

const versionOf = (path: string): number => readFileSync(path).readUInt16LE(8);

/** Appends records [from, to): sizes vary, every third one without its payload hash. */
function appendRange(set: Awaited<ReturnType<typeof openSet>>, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const payload = payloadOf(i, (i * 977) % 5000);
    set.append('content', 1 + (i % 2), keyOf(i), payload, i % 3 === 0 ? undefined : sha(payload));
  }
}

test('an arena sealed from digests taken at append is the file sealed from records read back', async () => {
  const n = 300;
  const names: string[][] = [];
  for (const splits of [[], [1], [120, 121], [n]]) {
    await withTempDir(async (dir) => {
      let set = await openSet(dir);
      let from = 0;
      for (const at of splits) {
        appendRange(set, from, at);
        from = at;
        // Closed and reopened: the records so far are found by the scan at open, their digests unknown.
        await set.close();
        set = await openSet(dir);
      }
      appendRange(set, from, n);
      await set.sealNow();
      assert.deepEqual(set.verify(), []);
      await set.close();
      const files = sealedFiles(dir);
      assert.equal(files.length, 1);
      assert.equal(versionOf(join(dir, files[0]!)), FORMAT_VERSION);
      names.push(files);
    });
  }
  // The file is named by its identity: equal names, equal key tables and headers.
  for (const got of names) assert.deepEqual(got, names[0]);
});

test('a payload hash that does not match the payload is reported by verify as a record not matching its digest', async () => {
  await withTempDir(async (dir) => {
    const set = await openSet(dir);
    appendRange(set, 0, 10);
    set.append('content', 1, keyOf(10), payloadOf(10), sha(payloadOf(11)));
    await set.sealNow();
    const problems = set.verify();
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, ErrorCodes.CORRUPT_RECORD);
    assert.match(problems[0]!.message, /does not match its digest/);
    assert.throws(() => set.append('content', 1, keyOf(11), payloadOf(11), Buffer.alloc(31)), (e: { code?: string }) => e.code === ErrorCodes.BAD_ARGUMENT);
    await set.close();
  });
});

test('an active arena begun in format 1 by an earlier build takes appends and is sealed in format 2', async () => {
  const fixture = fileURLToPath(new URL('../../../test/fixtures/arena-v1', import.meta.url));
  const expected = JSON.parse(readFileSync(join(fixture, 'expected.json'), 'utf8')) as {
    writer: string; sealed: { file: string }; active: { file: string; records: { seq: number; sha256: string }[] };
  };
  await withTempDir(async (dir) => {
    cpSync(fixture, dir, { recursive: true });
    const writer = Buffer.from(expected.writer, 'hex');
    assert.equal(versionOf(join(dir, expected.active.file)), 1);
    const set = await openArenaSet(dir, { fs: nodeFileSystem, writer, log: () => {} });
    try {
      const before = expected.active.records.length;
      for (let i = 0; i < 5; i++) set.append('log', 1, keyOf(i, 'after v1 '), payloadOf(1000 + i, 300));
      const sealed = await set.sealNow('log');
      assert.equal(sealed.length, 1);
      assert.equal(versionOf(sealed[0]!), 2);
      // The version-1 sealed arena is left as it was.
      assert.equal(versionOf(join(dir, expected.sealed.file)), 1);
      assert.deepEqual(set.verify(), []);
      const log = [...set.records('log', writer)];
      assert.equal(log.length, before + 5);
      assert.deepEqual(log.slice(0, before).map((r) => sha(r.payload).toString('hex')), expected.active.records.map((r) => r.sha256));
      assert.deepEqual(Buffer.from(log[before + 4]!.payload), payloadOf(1004, 300));
    } finally {
      await set.close();
    }
    const again = await openArenaSet(dir, { fs: nodeFileSystem, writer, log: () => {} });
    try {
      assert.deepEqual(again.verify(), []);
    } finally {
      await again.close();
    }
  });
});
