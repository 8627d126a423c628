// `bazil init`: creates the home (peer identity, volume directory) or, when
// it exists, reports it. Idempotent, so scripts can run it unconditionally.

import type { Command } from 'commander';
import { printResult } from '../output.js';

/** The option every command that works on a home takes; the home is resolved by resolveHomeDir. */
export const HOME_OPTION = {
  flags: '--home <dir>',
  description: 'the home directory (default: $BAZIL_HOME, else ~/.local/share/bazil)',
} as const;

export function register(program: Command): void {
  program
    .command('init')
    .description('create the Bazil home and this peer\'s identity (prints the existing one if already created)')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (options: { home?: string }, cmd: Command) => {
      const { initHome, resolveHomeDir } = await import('../../home/home.js');
      const { home, created } = await initHome(resolveHomeDir(options.home));
      try {
        const peer = home.peerId.toString('hex');
        printResult(cmd, { home: home.dir, peer, created }, () =>
          `${created ? 'created' : 'already initialized:'} home ${home.dir}\npeer ${peer}\n`,
        );
      } finally {
        await home.close();
      }
    });
}
