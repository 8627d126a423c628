// Every arena format, frozen: the bytes under test/fixtures/arena-vN were
// written by the release that introduced format N and must read back
// forever, through the memory map and through plain reads alike.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openArenaSet } from '../../migrations/index.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { withTempDir } from './helpers.js';

interface Expected {
  format: number;
  writer: string;
  sealed: { file: string; records: { key: string; type: number; sha256: string; length: number }[]; punched: string[] };
  active: { file: string; records: { key: string; seq: number; sha256: string }[]; tornTailBytes: number };
}

const fixtures = [1, 2].map((version) => ({ version, dir: fileURLToPath(new URL(`../../../test/fixtures/arena-v${version}`, import.meta.url)) }));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

for (const { version, dir: fixture } of fixtures) for (const native of [true, false]) {
  test(`arena format ${version} fixture reads back (${native ? 'memory map' : 'plain reads'})`, async () => {
    const expected = JSON.parse(readFileSync(join(fixture, 'expected.json'), 'utf8')) as Expected;
    assert.equal(expected.format, version);
    for (const file of [expected.sealed.file, expected.active.file]) assert.equal(readFileSync(join(fixture, file)).readUInt16LE(8), version);
    const before = process.env.BAZIL_NO_NATIVE;
    if (!native) process.env.BAZIL_NO_NATIVE = '1';
    try {
      await withTempDir(async (dir) => {
        cpSync(fixture, dir, { recursive: true });
        const activeSize = statSync(join(dir, expected.active.file)).size;
        const messages: string[] = [];
        const set = await openArenaSet(dir, { fs: nodeFileSystem, writer: Buffer.from(expected.writer, 'hex'), log: (m) => messages.push(m) });
        try {
          assert.ok(messages.some((m) => m.includes('torn tail')), 'the torn tail was not reported');
          assert.equal(statSync(join(dir, expected.active.file)).size, activeSize - expected.active.tornTailBytes);
          assert.deepEqual(set.verify(), []);
          const punched = new Set(expected.sealed.punched);
          for (const r of expected.sealed.records) {
            const key = Buffer.from(r.key, 'hex');
            if (punched.has(r.key)) {
              assert.equal(set.state(key), 'deleted');
              continue;
            }
            const got = set.get(key)!;
            assert.equal(got.type, r.type);
            assert.equal(sha(got.payload), r.sha256);
          }
          const log = [...set.records('log', Buffer.from(expected.writer, 'hex'))];
          assert.deepEqual(log.map((r) => Number(r.seq)), expected.active.records.map((r) => r.seq));
          assert.deepEqual(log.map((r) => sha(r.payload)), expected.active.records.map((r) => r.sha256));
          assert.deepEqual(set.sealedPaths().map((p) => p.slice(p.lastIndexOf('/') + 1)), [expected.sealed.file]);
        } finally {
          await set.close();
        }
      });
    } finally {
      if (before === undefined) delete process.env.BAZIL_NO_NATIVE;
      else process.env.BAZIL_NO_NATIVE = before;
    }
  });
}
