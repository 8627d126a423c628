// Shared helpers of the home tests.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs `fn` with a fresh temp directory (a home path inside it, not yet created), removed afterwards. */
export async function withHomeDir<T>(fn: (home: string, parent: string) => Promise<T>): Promise<T> {
  const parent = await mkdtemp(join(tmpdir(), 'bazil-home-test-'));
  try {
    return await fn(join(parent, 'home'), parent);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}
