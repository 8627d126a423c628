// Child process of the SIGKILL test: appends to an arena set in a loop and
// reports on stdout the highest sequence number whose sync() resolved.
// Keys are derived from sequence numbers so the parent can check them.

import { ArenaSet } from '../../arena/arena-set.js';
import { nodeFileSystem } from '../../arena/node-fs.js';
import { WRITER, keyOf, payloadOf } from './helpers.js';

const dir = process.argv[2];
const set = await ArenaSet.open(dir, { fs: nodeFileSystem, writer: WRITER, sealBytes: 64 * 1024, flushBytes: 4096 });
let seq = Number(set.nextSeq('log'));
process.stdout.write(`start ${seq}\n`);
for (;;) {
  const batch = 1 + (seq % 7);
  for (let i = 0; i < batch; i++, seq++) set.append('log', 1, keyOf(seq), payloadOf(seq, 50 + (seq % 500)));
  await set.sync();
  process.stdout.write(`acked ${seq - 1}\n`);
}
