// The arguments of benchmarks sized by a count of files: `--quick` (2,000),
// the default (10,000), `--full` or BAZIL_SLOW=1 (100,000), `--runs=N`.

export interface FileCountOptions {
  files: number;
  runs: number;
}

export function parseFileCountArgs(argv: readonly string[], defaultRuns: number): FileCountOptions {
  for (const a of argv) {
    if (a !== '--quick' && a !== '--full' && !/^--runs=\d+$/.test(a)) throw new Error(`unknown argument ${a}`);
  }
  const full = argv.includes('--full') || process.env.BAZIL_SLOW === '1';
  const runs = Number(argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? defaultRuns);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  return { files: full ? 100_000 : argv.includes('--quick') ? 2000 : 10_000, runs };
}
