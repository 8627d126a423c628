// `bazil fsck` checks the history checkpoints (docs/history.md): each file
// against its name, and each state (a delta's base and changes) against a
// replay of the log. A flipped byte, a truncated file and a forged
// checkpoint (well-formed, named by the hash of its own bytes, but not the
// log's state at its position) are each a BAZIL_BAD_CHECKPOINT finding;
// fsck deletes them (they are derived), the next fsck is clean, and the
// next history command writes them again, byte for byte as before.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointStore, CHECKPOINTS_DIR } from '../../src/history/checkpoints.js';
import { History } from '../../src/history/history.js';
import type { ProjectionCipher } from '../../src/projection/cipher.js';
import { SealingCodec } from '../../src/projection/record-codec.js';
import { bazil, ok, withVolume } from './cli-helpers.js';

interface FsckJson {
  ok: boolean;
  problems: { area: string; code: string; message: string }[];
}

async function ckptFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.ckpt')).sort();
}

test('fsck reports a corrupted, a truncated and a forged checkpoint with BAZIL_BAD_CHECKPOINT and deletes them; history writes them again', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-fsck-ckpt-'));
  try {
    const home = join(dir, 'home');
    ok(bazil(home, 'init'));
    ok(bazil(home, 'volume', 'create', 'v'));
    let cipher: ProjectionCipher | undefined;
    await withVolume(home, async (v) => {
      cipher = v.historySource().cipher;
      for (let i = 0; i < 30; i++) await v.writeFile(`/f${i}`, Buffer.from(`content ${i}\n`));
      for (let i = 0; i < 10; i++) await v.chmod(`/f${i}`, 0o600);
    });
    // The CLI helper takes checkpoints every 8 events.
    assert.equal(ok(bazil(home, 'show', 'v:/f2', '--at', '@30')).stdout, 'content 2\n');
    assert.equal(JSON.parse(ok(bazil(home, 'fsck', 'v', '--json')).stdout).ok, true, 'clean before the damage');
    const volDir = (await readdir(join(home, 'volumes'))).map((id) => join(home, 'volumes', id))[0]!;
    const ckDir = join(volDir, CHECKPOINTS_DIR);
    const original = await ckptFiles(ckDir);
    assert.ok(original.length >= 5, original.join(' '));

    // A forged checkpoint at the third position: the state loaded, one file's mode changed, saved under the hash of its own bytes.
    const refs = await new CheckpointStore(ckDir).list();
    const victim = refs[2]!;
    const store = new CheckpointStore(ckDir);
    const forged = await store.load(victim, new SealingCodec(cipher!), refs);
    const root = (await forged.rootId())!;
    const f1 = (await forged.lookup(root, 'f1'))!;
    forged.putInode(f1, { ...(await forged.inode(f1))!, mode: 0o4777 });
    const fake = await store.write(forged, victim.snapshots);
    await store.remove(victim.path);
    // A flipped byte in the state of the fourth, and the fifth cut short in its header.
    const flipped = join(ckDir, original[3]!);
    const bytes = await readFile(flipped);
    bytes[bytes.length - 8] ^= 0x01;
    await writeFile(flipped, bytes);
    const cut = join(ckDir, original[4]!);
    await truncate(cut, 12);

    const r = bazil(home, 'fsck', 'v', '--json');
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout) as FsckJson;
    assert.equal(report.ok, false);
    const found = report.problems.filter((p) => p.area === 'checkpoints');
    assert.deepEqual(report.problems.filter((p) => p.area !== 'checkpoints'), [], 'nothing else is wrong');
    assert.ok(found.every((p) => p.code === 'BAZIL_BAD_CHECKPOINT'), JSON.stringify(found));
    for (const path of [fake.path, flipped, cut]) assert.ok(found.some((p) => p.message.includes(path)), `${path} in ${JSON.stringify(found)}`);
    assert.ok(found.some((p) => p.message.includes(fake.path) && /differs from a replay/.test(p.message)), 'the forged one is caught by the replay');
    // The text form names the area and the code.
    const text = bazil(home, 'fsck', 'v');
    assert.equal(text.status, 0, 'the bad files were deleted by the first fsck');
    assert.match(text.stdout, /^clean/m);
    const left = await ckptFiles(ckDir);
    for (const gone of [fake.path, flipped, cut]) assert.ok(!left.includes(gone.slice(ckDir.length + 1)));

    // The next history command writes them again from the log: the original names, so the original bytes.
    assert.equal(ok(bazil(home, 'show', 'v:/f1', '--at', '@30')).stdout, 'content 1\n');
    assert.deepEqual(await ckptFiles(ckDir), original);
    assert.equal(JSON.parse(ok(bazil(home, 'fsck', 'v', '--json')).stdout).ok, true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('History.verify without rewrite only deletes; the deltas after a deleted base stay and load again once update writes it back', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-fsck-ckpt-'));
  try {
    const home = join(dir, 'home');
    ok(bazil(home, 'init'));
    ok(bazil(home, 'volume', 'create', 'v'));
    await withVolume(home, async (v) => {
      for (let i = 0; i < 20; i++) await v.writeFile(`/f${i}`, Buffer.from(`${i}`));
      const h = await History.open(v.historySource(), { every: 4n, fullEvery: 4n });
      await h.update();
      const refs = h.checkpoints();
      assert.deepEqual(refs.map((r) => r.base === null), refs.map((_, i) => i % 4 === 0), 'a full one every 4, deltas between');
      const bytes = await readFile(refs[1]!.path);
      bytes[bytes.length - 8] ^= 0x80;
      await writeFile(refs[1]!.path, bytes);
      const report = await h.verify({ rewrite: false });
      assert.deepEqual(report.findings.map((f) => f.count), [refs[1]!.count], 'the damaged delta; the deltas after it are right about their changes');
      assert.deepEqual(report.replaced, []);
      const again = await History.open(v.historySource(), { every: 4n, fullEvery: 4n });
      const view = await again.at({ kind: 'position', count: refs[3]!.count });
      assert.equal(view.from, refs[0]!.count, 'the delta after the gap is not loaded while its base is missing');
      assert.equal(await again.update(), 0, 'that replay wrote the missing one back');
      assert.deepEqual(again.checkpoints().map((r) => r.id), refs.map((r) => r.id));
      assert.equal((await again.at({ kind: 'position', count: refs[3]!.count })).from, refs[3]!.count);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
