// Child process of the projection migration test: opens a volume (which
// migrates its projection) and closes it. It says `ready` once its modules
// are loaded, so the parent can aim its SIGKILL at the migration itself.

import { Volume } from '../../src/volume/volume.js';

const [home, name] = process.argv.slice(2);
if (home === undefined || name === undefined) throw new Error('usage: projection-migrate-child HOME VOLUME');
process.stdout.write('ready\n');
const started = performance.now();
const v = await Volume.open(home, name);
await v.close();
process.stdout.write(`opened ${Math.round(performance.now() - started)}\n`);
