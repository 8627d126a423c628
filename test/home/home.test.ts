import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { initHome, openHome, resolveHomeDir, PEER_FILE, PEER_KEY_FILE } from '../../src/home/home.js';
import { signerFromSeed } from '../../src/log/signing.js';
import { withHomeDir } from './helpers.js';

const code = (c: string) => (err: unknown) => isBazilError(err) && err.code === c;

test('init creates a home with a peer identity; a second init reports the same one', async () => {
  await withHomeDir(async (dir) => {
    const first = await initHome(dir, { now: new Date('2026-01-02T03:04:05.000Z') });
    assert.equal(first.created, true);
    assert.equal(first.home.peerId.length, 32);
    const peerId = first.home.peerId.toString('hex');
    await first.home.close();

    const record = JSON.parse(await readFile(join(dir, PEER_FILE), 'utf8')) as { id: string; created: string };
    assert.deepEqual(record, { id: peerId, created: '2026-01-02T03:04:05.000Z' });
    const format = JSON.parse(await readFile(join(dir, 'FORMAT.json'), 'utf8')) as { format: string; version: number };
    assert.equal(format.format, 'bazil-home');
    assert.equal(format.version, 1);

    const second = await initHome(dir);
    assert.equal(second.created, false);
    assert.equal(second.home.peerId.toString('hex'), peerId);
    await second.home.close();
  });
});

test('the identity persists across opens and the key is the seed of the peer id', async () => {
  await withHomeDir(async (dir) => {
    const { home } = await initHome(dir);
    const peerId = Buffer.from(home.peerId);
    await home.close();
    for (let i = 0; i < 2; i += 1) {
      const again = await openHome(dir);
      assert.ok(again.peerId.equals(peerId));
      const sig = again.signer.sign(Buffer.from('x'));
      assert.equal(sig.length, 64);
      await again.close();
    }
    const seed = await readFile(join(dir, PEER_KEY_FILE));
    assert.equal(seed.length, 32);
    assert.ok(signerFromSeed(seed).writer.equals(peerId));
  });
});

test('the key file is mode 0600 and the home directory 0700', async () => {
  await withHomeDir(async (dir) => {
    const { home } = await initHome(dir);
    await home.close();
    assert.equal((await stat(join(dir, PEER_KEY_FILE))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'volumes'))).mode & 0o777, 0o700);
  });
});

test('opening a missing home says to run bazil init', async () => {
  await withHomeDir(async (dir) => {
    await assert.rejects(openHome(dir), (err: unknown) => code(ErrorCodes.NOT_FOUND)(err) && /bazil init/.test((err as Error).message));
  });
});

test('init refuses a directory that holds other files', async () => {
  await withHomeDir(async (dir) => {
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    await assert.rejects(initHome(dir), code(ErrorCodes.FORMAT_MISMATCH));
  });
});

test('a damaged key is refused rather than replaced', async () => {
  await withHomeDir(async (dir) => {
    const { home } = await initHome(dir);
    await home.close();
    await writeFile(join(dir, PEER_KEY_FILE), Buffer.alloc(32, 7));
    await assert.rejects(openHome(dir), code(ErrorCodes.CORRUPT_METADATA));
    await writeFile(join(dir, PEER_KEY_FILE), Buffer.alloc(5));
    await assert.rejects(initHome(dir), code(ErrorCodes.CORRUPT_METADATA));
  });
});

test('one owner at a time: a second open is LOCKED until the first closes; a dead owner\'s lock is broken', async () => {
  await withHomeDir(async (dir) => {
    const { home } = await initHome(dir);
    await assert.rejects(openHome(dir), code(ErrorCodes.LOCKED));
    await assert.rejects(initHome(dir), code(ErrorCodes.LOCKED));
    await home.close();

    // A process that has exited: its lock is stale.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    await writeFile(join(dir, 'FORMAT.lock'), `${JSON.stringify({ pid, host: hostname(), token: 'x', at: 'then', purpose: 'bazil home' })}\n`);
    const reopened = await openHome(dir);
    await reopened.close();
  });
});

test('resolveHomeDir: --home, then BAZIL_HOME, then ~/.local/share/bazil, always absolute', () => {
  assert.equal(resolveHomeDir('/a/b', { BAZIL_HOME: '/c' }), '/a/b');
  assert.equal(resolveHomeDir(undefined, { BAZIL_HOME: '/c' }), '/c');
  assert.match(resolveHomeDir(undefined, {}), /\/\.local\/share\/bazil$/);
  assert.match(resolveHomeDir(undefined, { BAZIL_HOME: 'rel' }), /^\/.*\/rel$/);
});
