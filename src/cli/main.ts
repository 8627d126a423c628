#!/usr/bin/env node
// Entry point of the `bazil` command (package.json "bin"). Everything testable
// lives in program.ts; this file only wires it to the process. While the
// home's daemon runs, the command line goes to it (forward.ts).

// First: V8's settings must hold before the rest is loaded.
import './v8-tuning.js';
import { BazilError } from '../../errors/index.js';
import { forwardToDaemon } from './forward.js';
import { EXIT_FAILURE, run } from './program.js';

// A reader that goes away early (`bazil ... | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const forwarded = await forwardToDaemon(process.argv).catch((err: unknown) => {
  // The daemon refused the command or went away: reported as any command's error is.
  if (err instanceof BazilError) {
    process.stderr.write(process.argv.includes('--json') ? `${JSON.stringify(err.toJSON())}\n` : `bazil: ${err.message} [${err.code}]\n`);
  } else {
    process.stderr.write(`bazil: the daemon failed to run the command: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  return EXIT_FAILURE;
});
const status = forwarded ?? (await run(process.argv));
// A command that reports a failure without throwing (fsck finding problems) has set process.exitCode itself.
if (status !== 0 || process.exitCode === undefined) process.exitCode = status;
