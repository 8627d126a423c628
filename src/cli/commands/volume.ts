// `bazil volume create|ls`: the volumes of a home.

import type { Command } from 'commander';
import type { VolumeListing } from '../../home/volumes.js';
import { printResult } from '../output.js';
import { withHome, type HomeOptions } from '../volume-access.js';
import { HOME_OPTION } from './init.js';

/** Hex digits of a volume id shown in tables: enough to tell volumes apart at a glance. */
const ID_PREFIX = 12;

export function register(program: Command): void {
  const volume = program.command('volume').description('create and list volumes');

  volume
    .command('create')
    .description('create an empty volume with a fresh id and secret, and print its id')
    .argument('<name>', '1 to 64 of A-Z a-z 0-9 . _ -, not starting with .; unique in the home')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (name: string, options: HomeOptions, cmd: Command) => {
      const { createVolume } = await import('../../home/volumes.js');
      const entry = await withHome(options, (home) => createVolume(home, name));
      printResult(cmd, entry, () => `${entry.id}\n`);
    });

  volume
    .command('ls')
    .description('list the volumes of the home: name, id, creation time, events in the log')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (options: HomeOptions, cmd: Command) => {
      const { listVolumes } = await import('../../home/volumes.js');
      const listings = await withHome(options, (home) => listVolumes(home));
      printResult(cmd, listings, () => table(listings));
    });
}

function table(listings: readonly VolumeListing[]): string {
  if (listings.length === 0) return 'no volumes yet (create one with `bazil volume create NAME`)\n';
  const rows = [
    ['NAME', 'ID', 'CREATED', 'EVENTS'],
    ...listings.map((v) => [v.name, v.id.slice(0, ID_PREFIX), v.created, String(v.events)]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows.map((r) => `${r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ')}\n`).join('');
}
