// A home's daemon whose volumes keep their arenas on the fault-injecting
// file layer (arena/fault-fs.ts), for mount-power-cut.test.ts. On SIGUSR2 it
// cuts the power (every write not yet synced is lost, as on a real disk)
// and kills itself at once, leaving its mount dead.
//
//   node power-cut-daemon.js HOME
//
// Prints "ready" once its control socket listens; `bazil mount` then finds it.
import { FaultFileSystem } from '../../arena/fault-fs.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { Volume } from '../../src/volume/volume.js';

const homeDir = process.argv[2];
if (homeDir === undefined) {
  process.stderr.write('usage: power-cut-daemon HOME\n');
  process.exit(2);
}
const faults = new FaultFileSystem();
const daemon = await Daemon.start({
  homeDir,
  exitWhenIdle: false,
  openVolume: (home, name) => Volume.open(home.dir, name, { home, fs: faults }),
});
process.on('SIGUSR2', () => {
  faults.powerCut();
  process.kill(process.pid, 'SIGKILL');
});
process.on('SIGTERM', () => void daemon.stop());
process.stdout.write('ready\n');
await daemon.stopped;
