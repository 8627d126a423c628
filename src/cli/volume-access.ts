// How a command reaches a volume: the one place that opens it, so that when
// a daemon holds the home (a mount is live), commands can be routed to it
// instead of failing on the home's lock.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { resolveHomeDir } from '../home/home.js';
import { Volume } from '../volume/volume.js';

export interface HomeOptions {
  home?: string;
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

/** Opens volume `name` of the home, runs `work`, closes it. */
export async function withVolume<T>(options: HomeOptions, name: string, work: (volume: Volume) => Promise<T>): Promise<T> {
  const volume = await Volume.open(resolveHomeDir(options.home), name);
  try {
    return await work(volume);
  } finally {
    await volume.close();
  }
}
