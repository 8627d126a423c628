// Forwarding a command line to the home's daemon (docs/mount.md, "Commands
// while mounted"). While a daemon holds the home (and its lock), a `bazil`
// process cannot open the home itself; it sends its argv over the control
// socket instead, and the daemon runs the same program in-process with the
// output streamed back.
//
// The daemon runs in another directory than the caller, so the caller makes
// its local paths absolute first. Which arguments are local paths is read
// from the program itself: an argument named `dir`, `file` or `local` (or
// ending in `-dir`/`-file`), and an option whose value is written `<dir>`,
// `<file>` or `<path>` (such as --home).

import { resolve } from 'node:path';
import type { Command, Option } from 'commander';
import { resolveHomeDir } from '../home/home-dir.js';
import { callOn, connectDaemon } from '../daemon/client.js';
import { createProgram } from './program.js';

/** Commands that talk to the daemon themselves, or never need the home's lock. */
const LOCAL_COMMANDS = new Set(['mount', 'umount', 'mounts', 'daemon', 'help', 'init']);
const LOCAL_ARGUMENT = /^(dir|file|local)$|-(dir|file)$/;
const LOCAL_OPTION_VALUE = /[<[](dir|file|path)[>\]]/;

export interface ForwardPlan {
  /** The command line for the daemon (without node and script). */
  argv: string[];
  /** The local paths in it, made absolute (the daemon refuses ones inside its own mounts). */
  localPaths: string[];
  homeDir: string;
}

function findOption(cmd: Command | null, flag: string): Option | undefined {
  for (let c = cmd; c !== null; c = c.parent) {
    const found = c.options.find((o) => o.long === flag || o.short === flag);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * What to send to a daemon for `args` (process.argv without node and
 * script), or undefined for a command line that runs here: no command, a
 * local command, help or version.
 */
export function planForward(program: Command, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): ForwardPlan | undefined {
  let cmd: Command = program;
  const out: string[] = [];
  const localPaths: string[] = [];
  let positional = 0;
  let home: string | undefined;
  let literal = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!literal && a === '--') {
      literal = true;
      out.push(a);
      continue;
    }
    if (!literal && a.startsWith('-') && a !== '-') {
      const eq = a.indexOf('=');
      const flag = a.startsWith('--') && eq !== -1 ? a.slice(0, eq) : a;
      if (flag === '--help' || flag === '-h' || flag === '--version' || flag === '-V') return undefined;
      const option = findOption(cmd, flag);
      if (option === undefined || (!option.required && !option.optional)) {
        out.push(a);
        continue;
      }
      let value: string | undefined = eq !== -1 && flag !== a ? a.slice(eq + 1) : undefined;
      if (value === undefined && i + 1 < args.length && (option.required || !args[i + 1]!.startsWith('-'))) value = args[++i]!;
      if (value === undefined) {
        out.push(flag);
        continue;
      }
      if (LOCAL_OPTION_VALUE.test(option.flags)) {
        value = resolve(cwd, value);
        localPaths.push(value);
      }
      if (option.long === '--home') home = value;
      out.push(flag, value);
      continue;
    }
    const sub = positional === 0 ? cmd.commands.find((c) => c.name() === a || c.aliases().includes(a)) : undefined;
    if (sub !== undefined) {
      if (cmd === program && LOCAL_COMMANDS.has(sub.name())) return undefined;
      cmd = sub;
      out.push(a);
      continue;
    }
    const defs = cmd.registeredArguments;
    const def = defs[Math.min(positional, defs.length - 1)];
    positional += 1;
    if (def !== undefined && LOCAL_ARGUMENT.test(def.name())) {
      const path = resolve(cwd, a);
      localPaths.push(path);
      out.push(path);
    } else {
      out.push(a);
    }
  }
  if (cmd === program || cmd.commands.length > 0) return undefined;
  return { argv: out, localPaths, homeDir: resolveHomeDir(home, env) };
}

/**
 * Runs `argv` (as process.argv) in the home's daemon when one runs, with
 * its output written here; undefined when no daemon runs (or the command
 * runs locally anyway), so the caller runs it itself.
 */
export async function forwardToDaemon(argv: readonly string[]): Promise<number | undefined> {
  if (process.env.BAZIL_NO_FORWARD === '1') return undefined;
  const plan = planForward(createProgram(), argv.slice(2), process.cwd());
  if (plan === undefined) return undefined;
  const socket = await connectDaemon(plan.homeDir).catch(() => undefined);
  if (socket === undefined) return undefined;
  const { exit } = await callOn(socket, { op: 'run', argv: plan.argv, localPaths: plan.localPaths }, {
    onOutput: (stream, data) => (stream === 'stdout' ? process.stdout : process.stderr).write(data),
  });
  return exit ?? 0;
}
