// V8 settings for a `bazil` process, imported first by main.ts so they hold
// before any of Bazil's own code runs (V8's flags are the whole process's:
// worker threads started later get them too).
//
// A `bazil import` of 1 GiB spent ~15% of its CPU time in TurboFan, V8's
// optimizing compiler, on its background threads: ~300 functions compiled,
// about 2 s of compile-thread time, on a machine whose two cores the main
// thread and the seal worker already fill (docs/ingest.md, "Round 8"). A
// function is optimized after it has run up an "interrupt budget" of
// bytecode; a larger one leaves the briefly hot functions (a command's
// start, a once-a-batch path) to the baseline compiler and optimizes only
// the ones that stay hot. Measured on import: ~7% less CPU, the same on
// export (docs/ingest.md, "Round 8"; BAZIL_V8_DEFAULTS=1 keeps V8's own).

import { setFlagsFromString } from 'node:v8';

/** V8's default in Node 20 is 67,584 (bytes of bytecode run). */
export const INTERRUPT_BUDGET = 300_000;

if (process.env['BAZIL_V8_DEFAULTS'] !== '1') setFlagsFromString(`--interrupt-budget=${INTERRUPT_BUDGET}`);
