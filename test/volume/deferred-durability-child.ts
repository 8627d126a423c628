// Child process of deferred-durability.test.ts: opens a volume on the
// fault-injecting file layer with metadata durability deferred by
// `deferMs`, runs one scenario, says "ack NAME" after each step returns,
// then cuts the power and exits without closing anything, as a dead
// machine would.
//
// argv: homeDir volumeName scenario deferMs

import { writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaultFileSystem } from '../../arena/fault-fs.js';
import { Volume } from '../../src/volume/volume.js';

const [homeDir, name, scenario, deferArg] = process.argv.slice(2) as [string, string, string, string];

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

const fs = new FaultFileSystem();
const v = await Volume.open(homeDir, name, { fs });
v.deferMetadataDurability(Number(deferArg));

switch (scenario) {
  case 'sync': {
    await v.mkdir('/before-sync');
    await v.sync();
    say('ack /before-sync');
    await v.mkdir('/after-sync');
    say('deferred /after-sync');
    break;
  }
  case 'fsync-clean-file': {
    // A file created and never written: its fsync must make the creation durable.
    const h = await v.create('/created', { mode: 0o640, read: true, write: true });
    await h.fsync();
    say('ack /created');
    await v.rename('/created', '/renamed-after');
    say('deferred /renamed-after');
    break;
  }
  case 'content-commit': {
    await v.mkdir('/dir');
    await v.symlink('target', '/dir/link');
    // A content commit is durable when it returns, and so is everything before it in the log.
    const h = await v.create('/dir/file', { read: true, write: true });
    await h.write(0, Buffer.from('hello'));
    await h.fsync();
    say('ack /dir');
    say('ack /dir/link');
    say('ack /dir/file');
    await v.unlink('/dir/link');
    say('deferred unlink /dir/link');
    break;
  }
  case 'timer': {
    await v.mkdir('/timed');
    // Past the interval, the deferred sync has run.
    await sleep(Number(deferArg) + 500);
    say('ack /timed');
    break;
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}
fs.powerCut();
process.exit(0);
