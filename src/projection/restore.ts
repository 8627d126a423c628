// Setting a projection's state to a saved one (a checkpoint of a prefix of
// the log) in place: the live projection's rewind (projector.ts). Only the
// records that differ are written, in one LevelDB batch with the new
// position, and the derived tables follow the way they follow any batch
// (aggregates.ts): back-links of the entries that change, dirty marks on
// the directories whose subtrees change. The saved state is opaque
// key/value records of the tables dump() holds, in their stored (sealed)
// form and stored key order, compared as stored; everything else is
// derived and never compared. The writes go back through the sealing
// layer in the clear, as every batch does.

import { aggregateWrites, type KeyWrite } from './aggregates.js';
import { DERIVED_TABLES, INODE_TABLE, KEY_CHECK_KEY, aggregateKey, dirtyKey } from './schema.js';
import type { SealedLevel } from './sealed-level.js';

/** Makes the stored tables equal `records` (stored forms, in stored key order); returns how many records were written or deleted. */
export async function restoreRecords(db: SealedLevel, records: Iterable<[Buffer, Buffer]>): Promise<number> {
  const pending = new Map<string, KeyWrite>();
  const before = new Map<string, Buffer | undefined>();
  const write = (storedKey: Buffer, storedValue: Buffer | null, wasStored: Buffer | undefined): void => {
    const [key, value] = db.codec.decode(storedKey, storedValue ?? wasStored!);
    const k = key.toString('latin1');
    pending.set(k, { key, value: storedValue === null ? null : value });
    before.set(k, wasStored === undefined ? undefined : db.codec.decode(storedKey, wasStored)[1]);
  };
  const want = records[Symbol.iterator]();
  let next = want.next();
  for await (const [key, value] of db.raw.iterator()) {
    if (DERIVED_TABLES.includes(key[0]!) || key.equals(KEY_CHECK_KEY)) continue;
    while (!next.done && Buffer.compare(next.value[0], key) < 0) {
      write(next.value[0], next.value[1], undefined);
      next = want.next();
    }
    if (!next.done && next.value[0].equals(key)) {
      if (!next.value[1].equals(value)) write(key, next.value[1], value);
      next = want.next();
      continue;
    }
    write(key, null, value);
    // An inode the saved state never had (made after it): a directory's
    // aggregate rows go with it, since no later batch will see it again.
    if (key[0] === INODE_TABLE) {
      const id = key.subarray(1);
      pending.set(aggregateKey(id).toString('latin1'), { key: aggregateKey(id), value: null });
      pending.set(dirtyKey(id).toString('latin1'), { key: dirtyKey(id), value: null });
    }
  }
  for (; !next.done; next = want.next()) write(next.value[0], next.value[1], undefined);
  for (const w of await aggregateWrites(db, pending, before)) pending.set(w.key.toString('latin1'), w);
  const ops = [...pending.values()].map(({ key, value }) => (value === null ? { type: 'del' as const, key } : { type: 'put' as const, key, value }));
  await db.batch(ops);
  return before.size;
}
