// Which directory is the home: kept apart from home.ts (which loads the
// migrations, the arenas and the signing keys) so that the CLI can find a
// daemon's socket without loading any of that.

import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The home directory to use: `explicit` (a --home option), else
 * $BAZIL_HOME, else ~/.local/share/bazil; always absolute.
 */
export function resolveHomeDir(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const fromEnv = env.BAZIL_HOME;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return join(homedir(), '.local', 'share', 'bazil');
}
