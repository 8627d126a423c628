// `bazil cp [--reflink] VOL:SRC VOL:DST`: an instant copy of a file or a
// whole tree inside one volume (docs/reflink.md). Content is always shared
// (the volume is content-addressed), so a plain `cp` is the same operation
// as `cp --reflink`: one clone event, whatever the size.

import type { Command } from 'commander';
import { BazilError, ErrorCodes } from '../../../errors/index.js';
import { parseTarget, withVolume, type HomeOptions } from '../volume-access.js';
import { printResult } from '../output.js';
import { HOME_OPTION } from './init.js';

export function register(program: Command): void {
  program
    .command('cp')
    .description('copy a file or a whole directory tree inside a volume, instantly: the copy shares the content (one event, whatever the size)')
    .argument('<source>', 'VOL:PATH: the file or directory to copy')
    .argument('<target>', 'VOL:PATH: the new name (must not exist; its directory must)')
    .option('--reflink', 'share the content (always so: accepted for the habit of cp --reflink)')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (srcSpec: string, dstSpec: string, options: HomeOptions, cmd: Command) => {
      const src = parseTarget(srcSpec, true);
      const dst = parseTarget(dstSpec, true);
      if (src.volume !== dst.volume) {
        throw new BazilError(ErrorCodes.CROSS_VOLUME, `cannot copy from volume '${src.volume}' to volume '${dst.volume}': a copy stays inside one volume`, {
          source: src.volume, target: dst.volume, errno: 'EXDEV',
        });
      }
      const copied = await withVolume(options, src.volume, async (v) => {
        const id = await v.reflink(src.path, dst.path);
        const attrs = await v.stat(dst.path);
        return { volume: src.volume, source: src.path, target: dst.path, id: id.toString('hex'), kind: attrs.kind };
      });
      printResult(cmd, copied, () => `copied ${src.volume}:${src.path} to ${dst.path} (${copied.kind === 'dir' ? 'a tree' : 'a file'}, content shared)\n`);
    });
}
