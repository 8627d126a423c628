// The volumes of a home: creating one (id, secret, arenas and its
// create-volume event), listing them, and opening one by name for the layers
// above (docs/home.md).
//
// A volume exists once its create-volume event is durable (the log's sync).
// Its directory is written first (secret, volume.json, arenas), the name
// index last; a crash in between leaves a directory the index does not name,
// which the next operation on the home settles: kept and indexed if its event
// is durable, else removed (it never existed, and it holds a secret).

import { randomBytes } from 'node:crypto';
import { access, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArenaSet } from '../../arena/arena-set.js';
import type { FileSystem } from '../../arena/file-system.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import { openArenaSet } from '../../migrations/index.js';
import { DEFAULT_CONTENT_FORMAT, NEW_VOLUME_CONTENT_FORMAT, type ContentFormat } from '../cas/content-format.js';
import { deriveVolumeKeys, SECRET_LENGTH, VOLUME_ID_LENGTH, type VolumeKeys } from '../crypto/volume-keys.js';
import { LOG_KIND, LogStore } from '../log/stream.js';
import { writeFileAtomic } from './atomic-file.js';
import { mkdirPrivate, PUBLIC_FILE_MODE, readSecretFile, SECRET_FILE_MODE, VOLUMES_DIR, type Home } from './home.js';
import { checkVolumeName } from './volume-name.js';
import { isVolumeEntry, readVolumeIndex, writeVolumeIndex, type VolumeEntry } from './volume-index.js';

export const VOLUME_FILE = 'volume.json';
export const SECRET_FILE = 'secret';
export const ARENAS_DIR = 'arenas';
/** The root directory's permissions in a new volume. */
const ROOT_MODE = 0o755;
const VOLUME_DIR_NAME = /^[0-9a-f]{64}$/;

export type { VolumeEntry } from './volume-index.js';

export interface VolumeListing extends VolumeEntry {
  /** Events in the volume's log, all writers together. */
  events: number;
}

/** An open volume: what the layers above the log need. Close it before closing the home. */
export interface OpenVolume {
  readonly name: string;
  readonly id: Buffer;
  /** The volume's directory (volumes/<id hex>). */
  readonly dir: string;
  readonly keys: VolumeKeys;
  /** Opened with this peer as writer. */
  readonly arenas: ArenaSet;
  readonly log: LogStore;
  close(): Promise<void>;
}

// Both are keyed by the home's directory, not its object: the daemon lends
// its home to forwarded commands through other Home objects of the same dir.
// Operations on one home run one at a time: each reads, settles and rewrites the index.
const queues = new Map<string, Promise<unknown>>();
// A volume's arena set can be open once per process; listing counts an open volume's events through it.
const openVolumes = new Map<string, Map<string, OpenVolume>>();

function exclusive<T>(home: Home, work: () => Promise<T>): Promise<T> {
  const previous = queues.get(home.dir) ?? Promise.resolve();
  const result = previous.then(work, work);
  queues.set(home.dir, result.catch(() => undefined));
  return result;
}

/**
 * Creates a volume named `name` (unique in the home; ALREADY_EXISTS
 * otherwise): a random id and secret, and a log whose first event is
 * create-volume, labelled with the name (encrypted, like every body).
 * `now` is the caller's clock: the creation time and the event's clock.
 * `contentFormat`: how its chunk keys are taken (src/cas/content-format.ts);
 * the newest by default.
 */
export async function createVolume(home: Home, name: string, options: { now?: Date; contentFormat?: ContentFormat } = {}): Promise<VolumeEntry> {
  checkVolumeName(name);
  return await exclusive(home, async () => {
    const entries = await settledIndex(home);
    if (entries.some((e) => e.name === name)) {
      throw new BazilError(ErrorCodes.ALREADY_EXISTS, `a volume named '${name}' already exists in ${home.dir}`, { name });
    }
    const now = options.now ?? new Date();
    const id = randomBytes(VOLUME_ID_LENGTH);
    const secret = randomBytes(SECRET_LENGTH);
    const entry: VolumeEntry = { name, id: id.toString('hex'), created: now.toISOString() };
    const dir = volumeDir(home, entry.id);
    await mkdirPrivate(dir);
    await writeFileAtomic(join(dir, SECRET_FILE), secret, SECRET_FILE_MODE);
    await writeFileAtomic(join(dir, VOLUME_FILE), `${JSON.stringify(entry, null, 2)}\n`, PUBLIC_FILE_MODE);
    const keys = deriveVolumeKeys(secret, id);
    const arenas = await openArenaSet(join(dir, ARENAS_DIR), { fs: nodeFileSystem, writer: home.peerId });
    try {
      const log = LogStore.open({ arenas, volume: id, eventKey: keys.eventKey, signer: home.signer });
      log.append(
        {
          type: 'create-volume', label: name, mode: ROOT_MODE, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0,
          content: options.contentFormat ?? NEW_VOLUME_CONTENT_FORMAT,
        },
        { wallMs: now.getTime() },
      );
      await log.sync();
    } finally {
      await arenas.close();
    }
    await writeVolumeIndex(home.dir, [...entries, entry]);
    return entry;
  });
}

/** Every volume of the home, sorted by name, with the number of events in its log. */
export function listVolumes(home: Home): Promise<VolumeListing[]> {
  return exclusive(home, async () => {
    const listings: VolumeListing[] = [];
    for (const entry of await settledIndex(home)) {
      const open = openVolumes.get(home.dir)?.get(entry.id);
      if (open !== undefined) {
        listings.push({ ...entry, events: countEvents(open.arenas) });
        continue;
      }
      const arenas = await openArenaSet(join(volumeDir(home, entry.id), ARENAS_DIR), { fs: nodeFileSystem, writer: home.peerId });
      try {
        listings.push({ ...entry, events: countEvents(arenas) });
      } finally {
        await arenas.close();
      }
    }
    return listings;
  });
}

export interface OpenVolumeOptions {
  /**
   * The file layer under the volume's arenas; default the real one. Crash
   * tests pass the fault-injecting layer (arena/fault-fs.ts) to cut the
   * power under a volume workload. The home's own files and the projection
   * do not go through it.
   */
  fs?: FileSystem;
  /** Where the arenas' recovery messages go (a torn tail cut, damaged records set aside); default nowhere. */
  log?: (message: string) => void;
}

/** Opens the volume named `name`; NOT_FOUND when the home has none by that name. */
export function openVolumeByName(home: Home, name: string, options: OpenVolumeOptions = {}): Promise<OpenVolume> {
  return exclusive(home, async () => {
    const entry = (await settledIndex(home)).find((e) => e.name === name);
    if (entry === undefined) {
      throw new BazilError(ErrorCodes.NOT_FOUND, `no volume named '${name}' in ${home.dir} (see \`bazil volume ls\`)`, { name });
    }
    const open = openVolumes.get(home.dir) ?? new Map<string, OpenVolume>();
    openVolumes.set(home.dir, open);
    if (open.has(entry.id)) {
      throw new BazilError(ErrorCodes.LOCKED, `volume '${name}' is already open in this process`, { name });
    }
    const dir = volumeDir(home, entry.id);
    const id = Buffer.from(entry.id, 'hex');
    const keys = deriveVolumeKeys(await readSecretFile(join(dir, SECRET_FILE), SECRET_LENGTH), id);
    const arenas = await openArenaSet(join(dir, ARENAS_DIR), { fs: options.fs ?? nodeFileSystem, writer: home.peerId, log: options.log });
    let log: LogStore;
    try {
      log = LogStore.open({ arenas, volume: id, eventKey: keys.eventKey, signer: home.signer });
    } catch (err) {
      await arenas.close();
      throw err;
    }
    const volume: OpenVolume = {
      name, id, dir, keys, arenas, log,
      async close() {
        if (open.get(entry.id) !== volume) return;
        open.delete(entry.id);
        await arenas.close();
      },
    };
    open.set(entry.id, volume);
    return volume;
  });
}

/**
 * The content format the volume's create-volume event names: the first
 * event of the log in merge order. Format 1 where it names none (created
 * before formats were named) and where that event cannot be read (a log
 * whose first record was damaged has no root either; new content then
 * only misses dedup against the old, nothing is lost).
 */
export function contentFormatOf(log: LogStore): ContentFormat {
  try {
    const first = log.merged().next();
    if (first.done === true) return DEFAULT_CONTENT_FORMAT;
    const body = log.open(first.value).body;
    return body.type === 'create-volume' ? body.content ?? DEFAULT_CONTENT_FORMAT : DEFAULT_CONTENT_FORMAT;
  } catch {
    return DEFAULT_CONTENT_FORMAT;
  }
}

function volumeDir(home: Home, idHex: string): string {
  return join(home.dir, VOLUMES_DIR, idHex);
}

function countEvents(arenas: ArenaSet): number {
  let total = 0n;
  for (const w of arenas.writers(LOG_KIND)) total += arenas.nextSeq(LOG_KIND, w) - 1n;
  return Number(total);
}

/** The index, after settling any volume directory a crashed create left unindexed. */
async function settledIndex(home: Home): Promise<VolumeEntry[]> {
  const entries = await readVolumeIndex(home.dir);
  const indexed = new Set(entries.map((e) => e.id));
  const root = join(home.dir, VOLUMES_DIR);
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    throw ioError('list', root, err);
  }
  let changed = false;
  for (const idHex of names) {
    if (!VOLUME_DIR_NAME.test(idHex) || indexed.has(idHex)) continue;
    const entry = await durableEntry(home, idHex);
    // A name taken meanwhile cannot happen (the index is settled before every create); keep the directory for a person to look at.
    if (entry !== null && entries.some((e) => e.name === entry.name)) continue;
    if (entry === null) {
      await rm(volumeDir(home, idHex), { recursive: true, force: true }).catch((err: unknown) => {
        throw ioError('remove', volumeDir(home, idHex), err);
      });
    } else {
      entries.push(entry);
    }
    changed = true;
  }
  if (changed) await writeVolumeIndex(home.dir, entries);
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** An unindexed volume directory's entry when its create-volume event is durable, else null (an interrupted create). */
async function durableEntry(home: Home, idHex: string): Promise<VolumeEntry | null> {
  const dir = volumeDir(home, idHex);
  const arenasDir = join(dir, ARENAS_DIR);
  let entry: unknown;
  try {
    entry = JSON.parse(await readFile(join(dir, VOLUME_FILE), 'utf8'));
    await access(arenasDir);
  } catch {
    // Missing or torn: the create stopped before its event could be written.
    return null;
  }
  if (!isVolumeEntry(entry) || entry.id !== idHex) return null;
  const arenas = await openArenaSet(arenasDir, { fs: nodeFileSystem, writer: home.peerId });
  try {
    return countEvents(arenas) > 0 ? { name: entry.name, id: entry.id, created: entry.created } : null;
  } finally {
    await arenas.close();
  }
}
