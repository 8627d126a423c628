// The tree `bazil import` is killed over, in the crash test
// (test/volume/crash.test.ts) and the stress script that biases its kills
// to the end of an import (scripts/crash-stress.ts).

import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

function fileSize(i: number): number {
  const r = Math.random();
  if (i % 23 === 0) return 0;
  if (r < 0.4) return Math.floor(Math.random() * 16 * 1024);
  if (r < 0.8) return Math.floor(Math.random() * 256 * 1024);
  return Math.floor(Math.random() * 2 * 1024 * 1024);
}

/**
 * Nested directories (some empty), `files` files of mixed sizes up to
 * 2 MiB, `bigFiles` of `bigSize` bytes, a symlink and a hard-link pair.
 * Returns the regular files' paths.
 */
export async function makeCrashTree(src: string, files: number, bigFiles: number, bigSize: number): Promise<string[]> {
  const dirs = ['', 'a', 'a/b', 'a/b/c', 'a/b/c/d', 'e', 'e/f', 'g', 'g/ü-日本', 'h', 'h/i', 'h/i/j'].map((d) => join(src, d));
  for (const d of dirs) await mkdir(d, { recursive: true });
  await mkdir(join(src, 'empty', 'deeper'), { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < files; i++) {
    const path = join(dirs[(i * 7) % dirs.length]!, `f${String(i).padStart(4, '0')}.bin`);
    await writeFile(path, i % 19 === 0 ? Buffer.alloc(fileSize(i), i & 0xff) : randomBytes(fileSize(i)));
    paths.push(path);
  }
  for (let i = 0; i < bigFiles; i++) {
    const path = join(dirs[(i * 5 + 3) % dirs.length]!, `big-${i}.bin`);
    await writeFile(path, randomBytes(bigSize));
    paths.push(path);
  }
  await symlink('../a/f0001.bin', join(src, 'e', 'link'));
  await link(paths[1]!, join(src, 'g', 'hard-f0001.bin'));
  return paths;
}

/** New random bytes (same size) in a `share` of the files; a hard-linked file is rewritten in place, so both names stay equal. */
export async function refreshCrashTree(paths: string[], share: number): Promise<void> {
  for (const path of paths) {
    if (Math.random() >= share) continue;
    const { size } = await lstat(path);
    if (size > 0) await writeFile(path, randomBytes(size));
  }
}
