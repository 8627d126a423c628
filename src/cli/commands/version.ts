// `bazil version`: the version of this build.

import type { Command } from 'commander';
import { printResult } from '../output.js';
import { packageInfo } from '../package-info.js';

export function register(program: Command): void {
  program
    .command('version')
    .description('print the version of Bazil')
    .action((_options: unknown, cmd: Command) => {
      const { version } = packageInfo();
      printResult(cmd, { version }, () => `bazil ${version}\n`);
    });
}
