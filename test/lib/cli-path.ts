// Where the compiled CLI sits relative to the compiled tests: tests may be
// built into any output directory (dist/, or a private one while several
// builds run at once), and the CLI is always compiled beside them.
import { fileURLToPath } from 'node:url';

/** The compiled `bazil` entry point of the same build as this file. */
export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
