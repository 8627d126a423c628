// A small source tree for the acceptance tests that need some data in a
// volume rather than a large generated one, and its round-trip check.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliOk } from './acceptance.js';

/** A few files of 10..290 kB, a subdirectory, a nested one with a text file. */
export async function makeSource(src: string): Promise<void> {
  await mkdir(join(src, 'sub', 'deeper'), { recursive: true });
  for (let i = 0; i < 8; i++) await writeFile(join(src, i % 2 === 0 ? 'sub' : '', `f${i}`), randomBytes(10_000 + i * 40_000));
  await writeFile(join(src, 'sub', 'deeper', 'note.txt'), 'keep me\n');
}

/** `bazil export v:/t` equals `src` (diff -r). */
export function assertExported(home: string, src: string, out: string): void {
  cliOk(home, ['export', 'v:/t', out]);
  const diff = spawnSync('diff', ['-r', '--no-dereference', src, out], { encoding: 'utf8' });
  assert.equal(diff.status, 0, `diff -r: ${diff.stdout}${diff.stderr}`);
}

