// Child process of the aggregates SIGKILL test: writes a burst into a
// volume, says `written`, then keeps the volume open (settling in the
// background) until the parent kills it.

import { Volume } from '../../src/volume/volume.js';

const [home, name, countText] = process.argv.slice(2);
if (home === undefined || name === undefined || countText === undefined) throw new Error('usage: aggregates-settle-child HOME VOLUME COUNT');
const v = await Volume.open(home, name);
const count = Number(countText);
for (let d = 0; d < 20; d++) await v.mkdir(`/k${d}`).catch(() => undefined);
await v.batch(async (b) => {
  for (let i = 0; i < count; i++) {
    const parent = await v.resolve(`/k${i % 20}`);
    const inode = await b.create({ type: 'create', parent, name: `f${i}-${process.pid}`, mode: 0o644, uid: 0, gid: 0 });
    await b.append({ type: 'truncate', inode, size: i + 1 });
  }
});
process.stdout.write('written\n');
setInterval(() => undefined, 1000);
