// Every command group of the `bazil` command. A group is a file in this
// directory exporting `register(program)`, which adds its commands with
// `program.command(...)` (so they inherit the program's error handling and
// output); list it here to enable it.

import type { Command } from 'commander';
import { register as version } from './version.js';
import { register as init } from './init.js';
import { register as volume } from './volume.js';
import { register as files } from './files.js';
import { register as history } from './history.js';
import { register as du } from './du.js';
import { register as mount } from './mount.js';
import { register as cp } from './cp.js';

export type RegisterCommands = (program: Command) => void;

export const commandGroups: readonly RegisterCommands[] = [version, init, volume, files, mount, du, history, cp];
