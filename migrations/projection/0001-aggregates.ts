// Projection schema 1 → 2: back-links from every node to the entries naming
// it, dirty marks on every live directory, then every directory's subtree
// aggregate computed (docs/aggregates.md). In place: the inode, entry, xattr
// and note tables are untouched, and nothing is replayed from the log.
//
// Idempotent: everything it writes is derived from tables it does not
// change, so a run killed at any point is simply run again (the runner does
// that until FORMAT.json records version 2). LevelDB writes are atomic per
// batch, so a kill leaves whole batches; the last write is synced before the
// runner records the version.

import { ClassicLevel } from 'classic-level';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import type { Migration } from '../runner.js';
import { AggregateSettler } from '../../src/projection/aggregates.js';
import {
  ENTRY_TABLE, INODE_TABLE, decodeEntry, decodeInode, dirtyKey, linkKey, prefixEnd,
} from '../../src/projection/schema.js';

/** Rows per LevelDB batch: bounds memory on large projections. */
const BATCH_ROWS = 10_000;

export const aggregatesMigration: Migration = {
  id: 1,
  name: 'aggregates',
  description: 'adds back-links and lazy subtree aggregates (rbytes, rfiles, rsubdirs, rctime) to the projection',
  async up(dir, log) {
    const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
    try {
      await db.open();
    } catch (err) {
      throw new BazilError(ErrorCodes.IO, `cannot open the projection at ${dir} to migrate it`, { path: dir }, err);
    }
    try {
      let links = 0;
      let dirs = 0;
      let ops: { type: 'put'; key: Buffer; value: Buffer }[] = [];
      const flush = async (): Promise<void> => {
        if (ops.length > 0) await db.batch(ops);
        ops = [];
      };
      const entries = Buffer.from([ENTRY_TABLE]);
      for await (const [k, v] of db.iterator({ gte: entries, lt: prefixEnd(entries) })) {
        ops.push({ type: 'put', key: linkKey(decodeEntry(v).child, k.subarray(1, 33), k.subarray(33).toString('utf8')), value: Buffer.alloc(0) });
        links++;
        if (ops.length >= BATCH_ROWS) await flush();
      }
      const inodes = Buffer.from([INODE_TABLE]);
      for await (const [k, v] of db.iterator({ gte: inodes, lt: prefixEnd(inodes) })) {
        const n = decodeInode(v);
        if (n.kind !== 'dir' || n.nlink === 0) continue;
        ops.push({ type: 'put', key: dirtyKey(k.subarray(1)), value: Buffer.alloc(0) });
        dirs++;
        if (ops.length >= BATCH_ROWS) await flush();
      }
      await flush();
      await new AggregateSettler(db).settle();
      // Writes above are not synced (LevelDB's default); this one is, and
      // syncs the log holding them all, before the runner records version 2.
      await db.batch([{ type: 'del', key: dirtyKey(Buffer.alloc(32)) }], { sync: true });
      log(`projection ${dir}: ${links} back-links, ${dirs} directory aggregates`);
    } finally {
      await db.close();
    }
  },
};
