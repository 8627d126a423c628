// The home's name index, volumes.json: every volume's name, id and creation
// time in one small file, so listing volumes and finding one by name read
// one file rather than every volume's directory, and a name's uniqueness is
// checked in one place. It is written only under the home lock, atomically.

import { join } from 'node:path';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { readJsonFile } from '../../migrations/durable-file.js';
import { writeFileAtomic } from './atomic-file.js';
import { PUBLIC_FILE_MODE } from './home.js';

export const VOLUME_INDEX_FILE = 'volumes.json';

export interface VolumeEntry {
  name: string;
  /** The volume id, 64 hex digits. */
  id: string;
  /** When it was created, ISO 8601, by the creating peer's clock. */
  created: string;
}

/** The index of the home in `homeDir`, sorted by name; empty when no volume was ever created. */
export async function readVolumeIndex(homeDir: string): Promise<VolumeEntry[]> {
  const path = join(homeDir, VOLUME_INDEX_FILE);
  const parsed = await readJsonFile(path);
  if (parsed === undefined) return [];
  const list = (parsed as { volumes?: unknown } | null)?.volumes;
  if (!Array.isArray(list) || !list.every(isVolumeEntry)) {
    throw new BazilError(ErrorCodes.CORRUPT_METADATA, `${path} is not a valid volume index`, { path });
  }
  return list;
}

/** Replaces the index with `entries` (sorted here). */
export async function writeVolumeIndex(homeDir: string, entries: readonly VolumeEntry[]): Promise<void> {
  const volumes = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  await writeFileAtomic(join(homeDir, VOLUME_INDEX_FILE), `${JSON.stringify({ volumes }, null, 2)}\n`, PUBLIC_FILE_MODE);
}

export function isVolumeEntry(value: unknown): value is VolumeEntry {
  const e = value as Partial<VolumeEntry> | null;
  return typeof e === 'object' && e !== null && typeof e.name === 'string' && typeof e.id === 'string' && /^[0-9a-f]{64}$/.test(e.id) && typeof e.created === 'string';
}
