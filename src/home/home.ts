// A home: the directory holding this peer's identity and its volumes
// (DESIGN.md, "Homes, volumes, processes"; layout in docs/home.md).
//
// One process owns a home at a time. The owner holds the home's directory
// lock (the migration runner's FORMAT.lock: an O_EXCL file with pid, host and
// token, broken when its owner is a dead process on this host) from open to
// close, so migrating a home and using it exclude each other through one lock.

import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import { migrate, readFormatRecord } from '../../migrations/index.js';
import { readJsonFile } from '../../migrations/durable-file.js';
import { acquireDirLock, type ReleaseLock } from '../../migrations/dir-lock.js';
import { generateSigner, signerFromSeed, SEED_LENGTH, type Signer } from '../log/signing.js';
import { removeTempFiles, writeFileAtomic } from './atomic-file.js';
import { HOME_FORMAT, homeMigrations } from './migrations.js';

export const PEER_FILE = 'peer.json';
export const PEER_KEY_FILE = 'peer.key';
export const VOLUMES_DIR = 'volumes';
/** Directories of a home hold secrets: only the owner may list or enter them. */
export const PRIVATE_DIR_MODE = 0o700;
export const SECRET_FILE_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;

export interface Home {
  /** Absolute path of the home directory. */
  readonly dir: string;
  /** The peer id: the raw Ed25519 public key, which is also this peer's writer id in every volume. */
  readonly peerId: Buffer;
  /** Signs this peer's events. */
  readonly signer: Signer;
  /** Releases the home for other processes. */
  close(): Promise<void>;
}

interface PeerRecord {
  id: string;
  created: string;
}

export { resolveHomeDir } from './home-dir.js';

export interface InitResult {
  home: Home;
  /** False when the home already existed (init is idempotent). */
  created: boolean;
}

/**
 * Creates the home in `dir` with a fresh peer identity, or opens it when it
 * exists already. A directory holding other files is refused
 * (FORMAT_MISMATCH), so pointing BAZIL_HOME at the wrong place stamps nothing.
 * `now` is the caller's clock, recorded in peer.json.
 */
export async function initHome(dir: string, options: { now?: Date } = {}): Promise<InitResult> {
  const abs = resolve(dir);
  try {
    await mkdir(abs, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    throw ioError('create', abs, err);
  }
  await migrate(abs, HOME_FORMAT, homeMigrations, { create: true });
  const release = await acquireDirLock(abs, 'bazil home');
  try {
    // Checked under the lock: a crash between the format record and the key leaves a home without identity, which init completes.
    const existing = await readPeerRecord(abs);
    if (existing === null) {
      const { seed, signer } = generateSigner();
      await mkdirPrivate(join(abs, VOLUMES_DIR));
      // The key first: a peer.json always names a key that is on disk.
      await writeFileAtomic(join(abs, PEER_KEY_FILE), seed, SECRET_FILE_MODE);
      const record: PeerRecord = { id: signer.writer.toString('hex'), created: (options.now ?? new Date()).toISOString() };
      await writeFileAtomic(join(abs, PEER_FILE), `${JSON.stringify(record, null, 2)}\n`, PUBLIC_FILE_MODE);
      return { home: makeHome(abs, signer, release), created: true };
    }
    return { home: await openLocked(abs, existing, release), created: false };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Opens an existing home and takes its lock; NOT_FOUND (with a hint) when there is none. */
export async function openHome(dir: string): Promise<Home> {
  const abs = resolve(dir);
  if ((await readFormatRecord(abs)) === null) {
    throw new BazilError(ErrorCodes.NOT_FOUND, `no Bazil home at ${abs}; run \`bazil init\` first`, { home: abs });
  }
  await migrate(abs, HOME_FORMAT, homeMigrations);
  const release = await acquireDirLock(abs, 'bazil home');
  try {
    const record = await readPeerRecord(abs);
    if (record === null) {
      throw new BazilError(ErrorCodes.NOT_FOUND, `the home at ${abs} has no peer identity (its creation was interrupted); run \`bazil init\` to finish it`, { home: abs });
    }
    return await openLocked(abs, record, release);
  } catch (err) {
    await release();
    throw err;
  }
}

async function openLocked(dir: string, record: PeerRecord, release: ReleaseLock): Promise<Home> {
  await removeTempFiles(dir);
  const keyPath = join(dir, PEER_KEY_FILE);
  const seed = await readSecretFile(keyPath, SEED_LENGTH);
  const signer = signerFromSeed(seed);
  if (signer.writer.toString('hex') !== record.id) {
    throw new BazilError(ErrorCodes.CORRUPT_METADATA, `${keyPath} is not the key of the peer ${PEER_FILE} names`, { path: keyPath });
  }
  return makeHome(dir, signer, release);
}

function makeHome(dir: string, signer: Signer, release: ReleaseLock): Home {
  let closed = false;
  return {
    dir,
    peerId: signer.writer,
    signer,
    async close() {
      if (closed) return;
      closed = true;
      await release();
    },
  };
}

async function readPeerRecord(dir: string): Promise<PeerRecord | null> {
  const path = join(dir, PEER_FILE);
  const parsed = await readJsonFile(path);
  if (parsed === undefined) return null;
  const r = parsed as Partial<PeerRecord> | null;
  if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || !/^[0-9a-f]{64}$/.test(r.id) || typeof r.created !== 'string') {
    throw new BazilError(ErrorCodes.CORRUPT_METADATA, `${path} is not a valid peer record`, { path });
  }
  return { id: r.id, created: r.created };
}

/** Reads a raw key file, which must hold exactly `length` bytes. */
export async function readSecretFile(path: string, length: number): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw ioError('read', path, err);
  }
  if (bytes.length !== length) {
    throw new BazilError(ErrorCodes.CORRUPT_METADATA, `${path} holds ${bytes.length} bytes, not a ${length}-byte key`, { path });
  }
  return bytes;
}

/** Creates a directory only its owner can enter (an existing one is left as it is). */
export async function mkdirPrivate(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    throw ioError('create', path, err);
  }
}
