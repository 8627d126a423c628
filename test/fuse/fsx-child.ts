// The fsx-style exerciser mount-fsx.test.ts runs in a child process: a
// seeded random sequence of writes, reads, truncates, renames, fsyncs and
// reopens on a few files in a directory, checked byte for byte against an
// in-memory model after every read and stat.
//
//   node fsx-child.js DIR SEED OPS MAX_SIZE STATE_FILE [--resume]
//
// At the end every file is fsynced and closed, and the model is saved to
// STATE_FILE; with --resume the model is loaded from it first and every
// file is checked against it before any new operation. Prints one JSON line:
// {"ok":true,"ops":N} or {"ok":false,"error":...,"log":[last ops]}.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { prng as mulberry32 } from '../lib/prng.js';

const [dir, seedText, opsText, maxText, stateFile] = process.argv.slice(2) as [string, string, string, string, string];
const resume = process.argv.includes('--resume');
const NAMES = ['f0', 'f1', 'f2', 'f3'];
const MAX_WRITE = 64 * 1024;


const rand = mulberry32(Number(seedText) + (resume ? 7919 : 0));
const int = (n: number): number => Math.floor(rand() * n);
const maxSize = Number(maxText);
const model = new Map<string, Buffer>();
const fds = new Map<string, number>();
const log: string[] = [];

function fail(message: string): never {
  process.stdout.write(`${JSON.stringify({ ok: false, error: message, log: log.slice(-20) })}\n`);
  process.exit(1);
}

function fdOf(name: string): number {
  let fd = fds.get(name);
  if (fd === undefined) {
    fd = openSync(join(dir, name), model.has(name) ? 'r+' : 'w+');
    fds.set(name, fd);
    if (!model.has(name)) model.set(name, Buffer.alloc(0));
  }
  return fd;
}

function randomBytesFrom(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

function checkRange(name: string, offset: number, length: number): void {
  const fd = fdOf(name);
  const want = model.get(name)!.subarray(offset, offset + length);
  const got = Buffer.alloc(length);
  let n = 0;
  while (n < length) {
    const r = readSync(fd, got, n, length - n, offset + n);
    if (r === 0) break;
    n += r;
  }
  if (n !== want.length || !got.subarray(0, n).equals(want)) {
    const at = [...want].findIndex((v, i) => got[i] !== v);
    fail(`${name}: read [${offset}, +${length}) got ${n} bytes, expected ${want.length}; first difference at ${at}`);
  }
}

function checkAll(): void {
  const listed = readdirSync(dir).sort();
  const expected = [...model.keys()].sort();
  if (JSON.stringify(listed) !== JSON.stringify(expected)) fail(`listing ${JSON.stringify(listed)}, model ${JSON.stringify(expected)}`);
  for (const [name, data] of model) {
    const onDisk = readFileSync(join(dir, name));
    if (!onDisk.equals(data)) fail(`${name}: content differs from the model (${onDisk.length} bytes, expected ${data.length})`);
  }
}

if (resume) {
  const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, string>;
  for (const [name, b64] of Object.entries(saved)) model.set(name, Buffer.from(b64, 'base64'));
  checkAll();
}

const ops = Number(opsText);
for (let i = 0; i < ops; i++) {
  const name = NAMES[int(NAMES.length)]!;
  const choice = int(100);
  if (choice < 35) {
    const data = model.get(name) ?? Buffer.alloc(0);
    const offset = int(Math.min(maxSize, data.length + MAX_WRITE));
    const length = 1 + int(Math.min(MAX_WRITE, maxSize - offset));
    log.push(`write ${name} ${offset} ${length}`);
    const bytes = randomBytesFrom(length);
    const fd = fdOf(name);
    if (writeSync(fd, bytes, 0, length, offset) !== length) fail(`short write to ${name}`);
    const current = model.get(name)!;
    const next = Buffer.alloc(Math.max(current.length, offset + length));
    current.copy(next);
    bytes.copy(next, offset);
    model.set(name, next);
  } else if (choice < 60) {
    if (!model.has(name)) continue;
    const size = model.get(name)!.length;
    const offset = int(size + 1);
    const length = 1 + int(MAX_WRITE * 2);
    log.push(`read ${name} ${offset} ${length}`);
    checkRange(name, offset, length);
  } else if (choice < 70) {
    const size = int(maxSize);
    log.push(`truncate ${name} ${size}`);
    ftruncateSync(fdOf(name), size);
    const current = model.get(name)!;
    const next = Buffer.alloc(size);
    current.copy(next, 0, 0, Math.min(size, current.length));
    model.set(name, next);
  } else if (choice < 78) {
    const to = NAMES[int(NAMES.length)]!;
    if (!model.has(name) || to === name) continue;
    log.push(`rename ${name} ${to}`);
    renameSync(join(dir, name), join(dir, to));
    const replaced = fds.get(to);
    if (replaced !== undefined) closeSync(replaced);
    fds.delete(to);
    const moved = fds.get(name);
    fds.delete(name);
    if (moved !== undefined) fds.set(to, moved);
    model.set(to, model.get(name)!);
    model.delete(name);
  } else if (choice < 86) {
    if (!model.has(name)) continue;
    log.push(`fsync ${name}`);
    fsyncSync(fdOf(name));
  } else if (choice < 93) {
    const fd = fds.get(name);
    if (fd === undefined) continue;
    log.push(`close ${name}`);
    closeSync(fd);
    fds.delete(name);
  } else {
    if (!model.has(name)) continue;
    log.push(`stat ${name}`);
    const size = fstatSync(fdOf(name)).size;
    if (size !== model.get(name)!.length) fail(`${name}: fstat size ${size}, model ${model.get(name)!.length}`);
  }
}

for (const fd of fds.values()) {
  fsyncSync(fd);
  closeSync(fd);
}
fds.clear();
checkAll();
writeFileSync(stateFile, JSON.stringify(Object.fromEntries([...model].map(([k, v]) => [k, v.toString('base64')]))));
process.stdout.write(`${JSON.stringify({ ok: true, ops })}\n`);
