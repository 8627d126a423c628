#!/usr/bin/env node
// Entry point of the `bazil` command (package.json "bin"). Everything testable
// lives in program.ts; this file only wires it to the process.

import { run } from './program.js';

// A reader that goes away early (`bazil ... | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await run(process.argv);
