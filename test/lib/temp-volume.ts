// A fresh home in a temp dir with one volume, v, open for the test; closed
// and removed afterwards, whatever the test did.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initHome } from '../../src/home/home.js';
import { createVolume } from '../../src/home/volumes.js';
import { Volume } from '../../src/volume/volume.js';

/** Runs `fn` with volume v of a new home at `dir`/home (`prefix` names the temp dir). */
export async function withTempVolume(prefix: string, fn: (volume: Volume, homeDir: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    const homeDir = join(dir, 'home');
    const { home } = await initHome(homeDir);
    await createVolume(home, 'v').finally(() => home.close());
    const volume = await Volume.open(homeDir, 'v');
    try {
      await fn(volume, homeDir, dir);
    } finally {
      await volume.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
