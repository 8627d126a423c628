// Shared by the CLI tests of history: the bazil command run as a child
// process on a home, and a volume with a known history (an imported tree, a
// snapshot "first", then changes made through the volume API).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Volume } from '../../src/volume/volume.js';
import { CLI_MAIN } from '../lib/cli-path.js';

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
  raw: Buffer;
}

/** Checkpoints every 8 events, so even small volumes use them. */
export function bazil(home: string, ...args: string[]): Result {
  const r = spawnSync(process.execPath, [CLI_MAIN, ...args], { timeout: 30_000, env: { ...process.env, BAZIL_HOME: home, BAZIL_CHECKPOINT_EVERY: '8' } });
  return { status: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), raw: r.stdout };
}

export function ok(r: Result): Result {
  assert.equal(r.status, 0, r.stderr);
  return r;
}

export function fails(r: Result, code: string, status = 1): void {
  assert.equal(r.status, status, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`), r.stderr);
}

export async function withVolume(home: string, work: (v: Volume) => Promise<void>): Promise<void> {
  const v = await Volume.open(home, 'v');
  try {
    await work(v);
  } finally {
    await v.close();
  }
}

export interface Story {
  home: string;
  big: Buffer;
  /** The position of the snapshot "first". */
  atFirst: number;
}

/**
 * Volume v: /t = {big.bin, docs/a.txt "version one"}, snapshot "first";
 * then a.txt becomes "version two", big.bin is chmodded, docs is renamed
 * papers, new.txt is written and big.bin removed.
 */
export async function story(dir: string): Promise<Story> {
  const home = join(dir, 'home');
  const src = join(dir, 'src');
  await mkdir(join(src, 'docs'), { recursive: true });
  const big = randomBytes(100_000);
  await writeFile(join(src, 'big.bin'), big);
  await writeFile(join(src, 'docs', 'a.txt'), 'version one\n');
  ok(bazil(home, 'init'));
  ok(bazil(home, 'volume', 'create', 'v'));
  ok(bazil(home, 'import', src, 'v:/t'));
  const snap = JSON.parse(ok(bazil(home, 'snapshot', 'create', 'v', 'first', '--json')).stdout) as { name: string; position: string };
  assert.equal(snap.name, 'first');
  await withVolume(home, async (v) => {
    await v.writeFile('/t/docs/a.txt', Buffer.from('version two\n'));
    await v.chmod('/t/big.bin', 0o600);
    await v.rename('/t/docs', '/t/papers');
    await v.writeFile('/t/new.txt', Buffer.from('new\n'));
    await v.unlink('/t/big.bin');
  });
  return { home, big, atFirst: Number(snap.position) };
}
