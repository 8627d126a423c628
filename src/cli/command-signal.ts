// The AbortSignal of the command being run, across its awaits. A command
// forwarded to the daemon runs with one that aborts when its client goes
// away (Ctrl-C of `bazil export` in another terminal); long commands pass
// it down to the volume, which stops at its next check (BAZIL_ABORTED).
// Run directly, a command has none: Ctrl-C ends its process.

import { AsyncLocalStorage } from 'node:async_hooks';

const current = new AsyncLocalStorage<AbortSignal>();

/** Runs `work` as a command whose signal is `signal`. */
export function runWithSignal<T>(signal: AbortSignal, work: () => T): T {
  return current.run(signal, work);
}

/** The running command's signal, if it has one. */
export function commandSignal(): AbortSignal | undefined {
  return current.getStore();
}
