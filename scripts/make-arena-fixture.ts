// Writes test/fixtures/arena-vN/: a small arena set in the current arena
// format (N = FORMAT_VERSION), frozen and read by the tests forever (sealed
// arenas are never rewritten, so every released format must stay readable).
//
// Run once when a format version is released: `node dist/scripts/make-arena-fixture.js DIR`.
// Never regenerate a committed fixture: its bytes are the point.

import { createHash } from 'node:crypto';
import { appendFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openArenaSet } from '../migrations/index.js';
import { nodeFileSystem } from '../arena/node-fs.js';
import { FORMAT_VERSION } from '../arena/format.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: make-arena-fixture DIR');
const writer = createHash('sha256').update('bazil fixture writer').digest();
const key = (s: string): Buffer => createHash('sha256').update(s).digest();
const payload = (i: number): Buffer => Buffer.from(`record ${i} `.repeat(1 + (i * 7) % 40));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

const set = await openArenaSet(dir, { fs: nodeFileSystem, writer });
const content: { key: string; type: number; sha256: string; length: number }[] = [];
for (let i = 0; i < 30; i++) {
  const k = key(`content ${i}`);
  set.append('content', 1 + (i % 3), k, payload(i));
  content.push({ key: k.toString('hex'), type: 1 + (i % 3), sha256: sha(payload(i)), length: payload(i).length });
}
const [sealedPath] = await set.sealNow('content');
const punched = [5, 6].map((i) => content[i].key);
await set.punch(punched.map((h) => Buffer.from(h, 'hex')));
const log: { key: string; seq: number; sha256: string }[] = [];
for (let i = 0; i < 10; i++) {
  const k = key(`log ${i}`);
  const seq = set.append('log', 1, k, payload(100 + i));
  log.push({ key: k.toString('hex'), seq: Number(seq), sha256: sha(payload(100 + i)) });
}
await set.close();
const active = readdirSync(dir).find((n) => n.endsWith('.active'))!;
// A half-written record at the tail, as a crash mid-append leaves it.
const torn = Buffer.from([0x40, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
appendFileSync(join(dir, active), torn);
rmSync(join(dir, 'LOCK'), { force: true });
writeFileSync(join(dir, 'expected.json'), JSON.stringify({
  format: FORMAT_VERSION,
  writer: writer.toString('hex'),
  sealed: { file: sealedPath.slice(sealedPath.lastIndexOf('/') + 1), records: content, punched },
  active: { file: active, records: log, tornTailBytes: torn.length },
}, null, 2) + '\n');
