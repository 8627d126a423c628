// Child process of the power-cut test: opens a volume whose arenas sit on
// the fault-injecting file layer, cuts the power at I/O op `cutAt` (0: never),
// and runs the seeded workload. It reports on stdout `ack K` once step K has
// resolved (a refusal with an errno counts: the model expects it), `fail K`
// when step K (or, with K = -1, the open) failed for an I/O reason, and
// `ops N` at the end. After a failure it exits at once, closing nothing, as
// a machine losing power would: the fault layer has already put the arenas
// back to what the disk held at the cut.
//
// argv: homeDir volumeName sourcesDir seed steps cutAt

import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { FaultFileSystem } from '../../arena/fault-fs.js';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { importTree } from '../../src/volume/import-export.js';
import { Volume } from '../../src/volume/volume.js';
import { runOp } from './model.js';
import { planWorkload, readLocalTree } from './power-cut-workload.js';

const [homeDir, name, sources, seedArg, stepsArg, cutArg] = process.argv.slice(2) as [string, string, string, string, string, string];
const ids = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

// Pipes are written synchronously, so nothing said before an exit is lost.
function say(line: string): void {
  writeSync(1, `${line}\n`);
}

function die(step: number, err: unknown): never {
  say(`fail ${step} ${JSON.stringify(err instanceof Error ? err.message : String(err))}`);
  process.exit(0);
}

let step = -1;
// A power cut can surface in background work (a group fsync nobody awaits yet): the process is dead all the same.
process.on('unhandledRejection', (err) => die(step, err));

const trees = [];
for (let k = 0; ; k++) {
  try {
    trees.push(await readLocalTree(join(sources, `i${k}`)));
  } catch {
    break;
  }
}
const { steps } = planWorkload(Number(seedArg), Number(stepsArg), trees, ids);
const fs = new FaultFileSystem();
if (Number(cutArg) > 0) fs.powerCutAt(Number(cutArg));

let v: Volume;
try {
  v = await Volume.open(homeDir, name, { fs });
} catch (err) {
  die(-1, err);
}
for (step = 0; step < steps.length; step++) {
  const s = steps[step]!;
  try {
    if (s.kind === 'import') await importTree(v, join(sources, s.src), s.path, { xattrs: false });
    else {
      const refused = await runOp(v, s.op);
      // runOp turns every BazilError into its errno (or code); only a POSIX refusal other than EIO is an answer, the rest is the end.
      if (refused !== null && (!/^E[A-Z0-9]+$/.test(refused) || refused === 'EIO')) throw new BazilError(ErrorCodes.IO, `step ${step} failed with ${refused}`);
    }
  } catch (err) {
    die(step, err);
  }
  say(`ack ${step}`);
}
say(`ops ${fs.ops}`);
process.exit(0);
