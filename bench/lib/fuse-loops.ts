// What bench/fuse and bench/fusemeta share: the binding's ceiling as a
// child process (bench/lib/memfs-ceiling.ts), and the metadata loop both
// time (a Python process, so the file system is driven from outside the
// process serving it).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findFuseConnection, freeWedgedMount } from '../../src/fuse/binding.js';

const run = promisify(execFile);
const CEILING = fileURLToPath(new URL('./memfs-ceiling.js', import.meta.url));
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Creates N files in a new directory, stats them, unlinks them; prints the seconds it took. */
const META_PY = String.raw`
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
names = [os.path.join(d, 'f%06d' % i) for i in range(n)]
t = time.perf_counter()
for p in names: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
for p in names: os.stat(p)
for p in names: os.unlink(p)
print(time.perf_counter() - t)
`;

/** Operations per second of create+stat+unlink of `n` files in `dir` (3n operations). */
export async function metaOpsPerSecond(dir: string, n: number): Promise<number> {
  const { stdout } = await run(PYTHON, ['-c', META_PY, dir, String(n)]);
  return (3 * n) / Number(stdout.trim());
}

/** Mounts the ceiling file system at `dir`; resolves once it is mounted. */
export async function startCeiling(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CEILING, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (s: string) => s.includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`the ceiling file system exited (${code}) before mounting`)));
  });
  return child;
}

/** Stops the ceiling and frees its mount if it did not unmount. */
export async function stopCeiling(child: ChildProcess, dir: string): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if ((await findFuseConnection(dir)) !== undefined) await freeWedgedMount(dir);
}
