// The `bazil` program: builds the commander tree and runs it, turning every
// failure into a one-line message and an exit status.
//
// Exit status: 0 success, 1 failure (a BazilError, or a bug), 2 usage error
// (unknown command or option, missing argument). A BazilError prints as
// `bazil: <message> [<code>]` without a stack trace (BAZIL_DEBUG=1 adds it);
// with --json it prints its toJSON() instead. Both go to stderr, so stdout
// only ever carries results.

import { Command, CommanderError } from 'commander';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { commandGroups, type RegisterCommands } from './commands/index.js';
import { packageInfo } from './package-info.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function createProgram(groups: readonly RegisterCommands[] = commandGroups, io: CliIO = processIO): Command {
  const pkg = packageInfo();
  const program = new Command('bazil')
    .description(pkg.description)
    .version(pkg.version, '-V, --version', 'print the version')
    .option('--json', 'print results (and errors, on stderr) as JSON')
    .helpCommand(true)
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true)
    .exitOverride()
    // Errors are printed by run() in Bazil's own format instead.
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} });
  for (const register of groups) register(program);
  return program;
}

export interface RunOptions {
  groups?: readonly RegisterCommands[];
  io?: CliIO;
}

/** Runs the command line `argv` (as in process.argv) and returns the exit status. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<number> {
  const io = options.io ?? processIO;
  const program = createProgram(options.groups, io);
  try {
    await program.parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    return report(err, jsonRequested(program, argv), io);
  }
}

/** --json counts even when parsing failed before commander stored it. */
function jsonRequested(program: Command, argv: readonly string[]): boolean {
  if (program.opts<{ json?: boolean }>().json === true) return true;
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

function report(err: unknown, json: boolean, io: CliIO): number {
  if (err instanceof CommanderError) {
    // Help and version were printed already. `bazil help CMD` exits 0; a
    // bare `bazil`, which printed help to stderr, is a usage error.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
    if (err.code === 'commander.help') return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    // Commander's message may carry a second line, e.g. "(Did you mean version?)".
    const [first = '', ...hints] = err.message.replace(/^error: /, '').split('\n');
    const usage = new BazilError(ErrorCodes.BAD_ARGUMENT, [first, ...hints].join(' '), { usage: err.code });
    if (json) {
      io.stderr(`${JSON.stringify(usage.toJSON())}\n`);
    } else {
      io.stderr(`bazil: ${first} [${usage.code}]\n${hints.map((h) => `${h}\n`).join('')}Run 'bazil --help' for usage.\n`);
    }
    return EXIT_USAGE;
  }
  if (err instanceof BazilError) {
    if (json) io.stderr(`${JSON.stringify(err.toJSON())}\n`);
    else io.stderr(`bazil: ${err.message} [${err.code}]\n`);
    if (process.env.BAZIL_DEBUG === '1') io.stderr(`${debugTrace(err)}\n`);
    return EXIT_FAILURE;
  }
  // Anything else is a bug: say so, and keep the stack for the report.
  const message = err instanceof Error ? err.message : String(err);
  if (json) {
    io.stderr(`${JSON.stringify({ code: ErrorCodes.INTERNAL, message, data: {} })}\n`);
  } else {
    io.stderr(`bazil: internal error (a bug in Bazil): ${message} [${ErrorCodes.INTERNAL}]\n`);
  }
  io.stderr(`${debugTrace(err)}\n`);
  return EXIT_FAILURE;
}

function debugTrace(err: unknown): string {
  const lines: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 8; depth += 1) {
    const text = current instanceof Error ? (current.stack ?? current.message) : String(current);
    lines.push(depth === 0 ? text : `caused by: ${text}`);
    current = current instanceof Error ? current.cause : undefined;
  }
  return lines.join('\n');
}
