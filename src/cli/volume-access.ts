// How a command reaches a volume: the one place that opens it. In a plain
// `bazil` process that means opening the home (taking its lock). Inside the
// home's daemon, which already holds the home and its mounted volumes,
// commands forwarded over the control socket run in-process, and a volume
// provider installed here hands them the daemon's open Volume objects
// instead (docs/mount.md, "Commands while mounted").

import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { Home } from '../home/home.js';
import { resolveHomeDir } from '../home/home-dir.js';
import type { ContentOption, Volume } from '../volume/volume.js';

export interface HomeOptions {
  home?: string;
}

/** A volume lent by whoever holds the home; release() when done. */
export interface VolumeLease {
  volume: Volume;
  release(): Promise<void>;
}

/** What the daemon installs: its home, open, and its volumes. */
export interface VolumeProvider {
  readonly homeDir: string;
  readonly home: Home;
  acquire(name: string): Promise<VolumeLease>;
}

let provider: VolumeProvider | undefined;

/** Routes withVolume/withHome for `provider.homeDir` to the provider (undefined: back to opening homes). */
export function installVolumeProvider(p: VolumeProvider | undefined): void {
  provider = p;
}

/** VOL[:PATH] → volume name and absolute path. */
export function parseTarget(spec: string, requirePath = false): { volume: string; path: string } {
  const colon = spec.indexOf(':');
  const volume = colon === -1 ? spec : spec.slice(0, colon);
  const rest = colon === -1 ? '' : spec.slice(colon + 1);
  if (volume === '' || (requirePath && rest === '')) {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `expected ${requirePath ? 'VOL:PATH' : 'VOL[:PATH]'}, got ${JSON.stringify(spec)}`, { spec });
  }
  return { volume, path: rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}` };
}

/** Opens volume `name` of the home (or borrows it from the daemon holding the home), runs `work`, closes it. */
export async function withVolume<T>(options: HomeOptions, name: string, work: (volume: Volume) => Promise<T>, open: ContentOption = {}): Promise<T> {
  const homeDir = resolveHomeDir(options.home);
  if (provider !== undefined && provider.homeDir === homeDir) {
    const lease = await provider.acquire(name);
    try {
      return await work(lease.volume);
    } finally {
      await lease.release();
    }
  }
  // The volume's modules (LevelDB, the arenas, crypto) load with the first command that needs them (docs/ingest.md).
  const { Volume } = await import('../volume/volume.js');
  const volume = await Volume.open(homeDir, name, open);
  try {
    return await work(volume);
  } finally {
    await volume.close();
  }
}

/** Opens the home (or borrows the daemon's), runs `work`, closes it. */
export async function withHome<T>(options: HomeOptions, work: (home: Home) => Promise<T>): Promise<T> {
  const homeDir = resolveHomeDir(options.home);
  if (provider !== undefined && provider.homeDir === homeDir) return work(provider.home);
  const { openHome } = await import('../home/home.js');
  const home = await openHome(homeDir);
  try {
    return await work(home);
  } finally {
    await home.close();
  }
}
