// Helpers shared by benchmarks: samples and medians, number formatting, a
// plain-text table, and a one-line description of the machine.

import { cpus, totalmem, platform, release, arch } from 'node:os';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** Named samples, one value per run; figures are their medians. */
export class Samples {
  private readonly byName = new Map<string, number[]>();

  add(name: string, value: number): void {
    let list = this.byName.get(name);
    if (!list) this.byName.set(name, (list = []));
    list.push(value);
  }

  has(name: string): boolean {
    return (this.byName.get(name)?.length ?? 0) > 0;
  }

  all(name: string): number[] {
    return this.byName.get(name) ?? [];
  }

  median(name: string): number {
    const xs = this.byName.get(name);
    if (!xs || xs.length === 0) throw new Error(`no samples for ${name}`);
    return median(xs);
  }

  /** "min–max" of the runs, or '' with a single run. */
  spread(name: string, fmt: (v: number) => string): string {
    const xs = this.all(name);
    if (xs.length < 2) return '';
    return `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`;
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rounds to `digits` significant digits (for the RESULT line). */
export function sig(v: number, digits = 4): number {
  if (!Number.isFinite(v) || v === 0) return v;
  return Number(v.toPrecision(digits));
}

export function fmtInt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

/** Operations per second: "1.23 M/s", "345 k/s". */
export function fmtOps(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 1 : 2)} M/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e5 ? 0 : 1)} k/s`;
  return `${v.toFixed(0)} /s`;
}

export function fmtMBs(v: number): string {
  return `${v.toFixed(v >= 100 ? 0 : 1)} MB/s`;
}

export function fmtFixed(v: number, digits: number, unit = ''): string {
  return `${v.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
}

export function fmtRatio(v: number): string {
  return `${v.toFixed(v >= 10 ? 1 : 2)}×`;
}

export interface Row {
  figure: string;
  value: string;
  spread?: string;
  baseline?: string;
  ratio?: string;
  target?: string;
  verdict?: string;
}

export type TableLine = Row | { section: string } | { note: string };

const COLUMNS: { key: keyof Row; title: string }[] = [
  { key: 'figure', title: 'figure' },
  { key: 'value', title: 'median' },
  { key: 'spread', title: 'runs min–max' },
  { key: 'baseline', title: 'baseline beside it (same run)' },
  { key: 'ratio', title: 'ratio' },
  { key: 'target', title: 'target' },
  { key: 'verdict', title: '' },
];

/** A plain-text table with aligned columns; section and note lines span it. */
export function renderTable(lines: readonly TableLine[]): string {
  const rows = lines.filter((l): l is Row => 'figure' in l);
  const widths = COLUMNS.map((c) => Math.max(c.title.length, ...rows.map((r) => (r[c.key] ?? '').length)));
  const right = new Set<keyof Row>(['value', 'ratio']);
  const fmtRow = (cells: (string | undefined)[]): string =>
    cells.map((c, i) => (right.has(COLUMNS[i]!.key) ? (c ?? '').padStart(widths[i]!) : (c ?? '').padEnd(widths[i]!))).join(' | ').trimEnd();
  const out: string[] = [];
  const header = fmtRow(COLUMNS.map((c) => c.title));
  const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
  out.push(header, rule);
  for (const l of lines) {
    if ('section' in l) out.push(`== ${l.section}`);
    else if ('note' in l) out.push(`   ${l.note}`);
    else out.push(fmtRow(COLUMNS.map((c) => l[c.key])));
  }
  return out.join('\n');
}

/** Verdict against a lower bound (value must be >= need). */
export function atLeast(value: number, need: number): string {
  return value >= need ? 'ok' : 'MISSED';
}

/** Verdict against an upper bound (value must be <= limit). */
export function atMost(value: number, limit: number): string {
  return value <= limit ? 'ok' : 'MISSED';
}

/** File system type and device holding `dir`, from /proc/mounts (Linux). */
function mountOf(dir: string): string {
  try {
    const path = resolve(dir);
    let best = { point: '', type: '?', dev: '?' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [dev, point, type] = line.split(' ');
      if (!dev || !point || !type) continue;
      if ((path === point || path.startsWith(point.endsWith('/') ? point : `${point}/`)) && point.length >= best.point.length) {
        best = { point, type, dev };
      }
    }
    return `${best.type} (${best.dev} on ${best.point})`;
  } catch {
    return 'unknown file system';
  }
}

export function machineLine(tempDir: string): string {
  const c = cpus();
  const model = c[0]?.model.trim() ?? 'unknown CPU';
  const gib = totalmem() / 2 ** 30;
  return `machine: ${model}, ${c.length} cores, ${gib.toFixed(1)} GiB RAM, Node ${process.version}, ${platform()} ${release()} ${arch()}; temp dir ${tempDir} on ${mountOf(tempDir)}`;
}
