import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { ErrorCodes } from '../../errors/index.js';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { importTree } from '../../src/volume/import-export.js';
import { Volume } from '../../src/volume/volume.js';

async function withVolume(fn: (homeDir: string, volumeDir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-fsck-test-'));
  try {
    const homeDir = join(dir, 'home');
    const { home } = await initHome(homeDir);
    let id: string;
    try {
      id = (await createVolume(home, 'v')).id;
    } finally {
      await home.close();
    }
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    for (let i = 0; i < 12; i++) await writeFile(join(src, i % 2 ? 'sub' : '', `f${i}`), randomBytes(20_000 + i * 7_000));
    const v = await Volume.open(homeDir, 'v');
    try {
      await importTree(v, src, '/t');
    } finally {
      await v.close();
    }
    await fn(homeDir, join(homeDir, 'volumes', id));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fsck(homeDir: string): Promise<Awaited<ReturnType<Volume['fsck']>>> {
  const v = await Volume.open(homeDir, 'v');
  try {
    return await v.fsck();
  } finally {
    await v.close();
  }
}

test('fsck of an intact volume is clean and counts what it checked', async () => {
  await withVolume(async (homeDir) => {
    const report = await fsck(homeDir);
    assert.deepEqual(report.problems, []);
    assert.ok(report.ok);
    assert.equal(report.counts.files, 12);
    assert.ok(report.counts.objects >= 12 && report.counts.events >= 15);
  });
});

test('fsck reports a damaged content object', async () => {
  await withVolume(async (homeDir, volumeDir) => {
    const arenas = join(volumeDir, 'arenas');
    const file = (await readdir(arenas)).find((n) => n.startsWith('content.') && n.endsWith('.active'))!;
    const bytes = await readFile(join(arenas, file));
    // A byte inside the third record's payload: the arena recovers up to it
    // and keeps the rest aside, and the files whose objects are gone fail.
    let at = 128;
    for (let r = 0; r < 2; r++) at += 45 + bytes.readUInt32LE(at);
    bytes[at + 45 + 100] ^= 0x20;
    await writeFile(join(arenas, file), bytes);
    const report = await fsck(homeDir);
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => p.area === 'content' && p.code === ErrorCodes.NOT_FOUND), JSON.stringify(report.problems));
    // A missing object is reported with the path of the file that names it.
    assert.ok(report.problems.some((p) => p.code === ErrorCodes.NOT_FOUND && /^\/\S+: object [0-9a-f]{64} is missing/.test(p.message)), JSON.stringify(report.problems));
  });
});

test('fsck reports a projection that differs from a replay of the log', async () => {
  await withVolume(async (homeDir, volumeDir) => {
    const db = new ClassicLevel<Buffer, Buffer>(join(volumeDir, 'projection'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    await db.put(Buffer.from('zz-not-from-the-log'), Buffer.from('x'));
    await db.close();
    const report = await fsck(homeDir);
    assert.equal(report.ok, false);
    assert.ok(report.problems.some((p) => p.area === 'projection'), JSON.stringify(report.problems));
  });
});

test('fsck lists a projection record that does not open and goes on checking', async () => {
  await withVolume(async (homeDir, volumeDir) => {
    const db = new ClassicLevel<Buffer, Buffer>(join(volumeDir, 'projection'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    let damaged = 0;
    try {
      // Every directory entry's sealed value, one byte flipped: the entries
      // still parse as records, but none opens.
      for await (const [key, value] of db.iterator({ gte: Buffer.from([0x03]), lt: Buffer.from([0x04]) })) {
        const flipped = Buffer.from(value);
        flipped[flipped.length - 1] ^= 0x40;
        await db.put(key, flipped);
        damaged++;
      }
    } finally {
      await db.close();
    }
    assert.ok(damaged >= 14, `${damaged} entries damaged`);
    const report = await fsck(homeDir);
    assert.equal(report.ok, false);
    const unreadable = report.problems.filter((p) => p.area === 'projection' && p.code === ErrorCodes.CORRUPT_METADATA);
    assert.ok(unreadable.length >= 1, JSON.stringify(report.problems));
    assert.ok(unreadable.some((p) => /rebuild/.test(p.message)), JSON.stringify(unreadable));
    // The checks after the content walk still ran: the log is intact.
    assert.ok(report.counts.events >= 15);
    assert.ok(!report.problems.some((p) => p.area === 'log'), JSON.stringify(report.problems));
  });
});
