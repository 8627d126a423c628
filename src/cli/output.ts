// How commands print results: human text by default, one JSON document with
// the global --json. Output goes through commander's configured writers, so
// tests running the program in-process capture it.

import type { Command } from 'commander';

export function wantsJson(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ json?: boolean }>().json === true;
}

export function writeOut(cmd: Command, text: string): void {
  const write = cmd.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
  write(text);
}

/** Prints `data` as JSON with --json, else the text `human` returns. */
export function printResult(cmd: Command, data: unknown, human: () => string): void {
  writeOut(cmd, wantsJson(cmd) ? `${JSON.stringify(data)}\n` : human());
}
