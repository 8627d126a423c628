// `bazil du VOL[:PATH]`: a directory tree with its subtree aggregates
// (rbytes, rfiles, rsubdirs, rctime; docs/aggregates.md), read from the
// projection rather than by walking every file, so it costs the same for a
// huge tree as for a small one.

import { InvalidArgumentError, type Command } from 'commander';
import type { Aggregates } from '../../volume/aggregates.js';
import type { Volume } from '../../volume/volume.js';
import { parseTarget, withVolume, type HomeOptions } from '../volume-access.js';
import { printResult } from '../output.js';
import { HOME_OPTION } from './init.js';

const PAGE = 1000;
const UNITS = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];

export interface DuNode {
  path: string;
  rbytes: number;
  rfiles: number;
  rsubdirs: number;
  /** Newest ctime below, ns since the epoch, as a decimal string (JSON has no 64-bit integers). */
  rctime: string;
  exact: boolean;
  children?: DuNode[];
}

interface DuOptions extends HomeOptions {
  depth: number;
  exact?: boolean;
}

export function register(program: Command): void {
  program
    .command('du')
    .description("a directory's recursive size, file and directory counts and newest change, from the volume's lazy aggregates, as a tree")
    .argument('<target>', 'VOL[:PATH]: the directory (default: the root)')
    .option('-d, --depth <n>', 'how many levels of subdirectories to show below PATH', parseDepth, 1)
    .option('--exact', 'wait until every change is folded into the aggregates (otherwise the last figures are shown, marked ~ when not exact)')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, options: DuOptions, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec);
      const tree = await withVolume(options, name, async (v) => {
        if (options.exact === true) await v.aggregates(path, { exact: true });
        return describe(v, path, options.depth);
      });
      printResult(cmd, tree, () => render(tree));
    });
}

function parseDepth(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of levels (0 shows PATH alone)');
  return Number(value);
}

async function describe(v: Volume, path: string, depth: number): Promise<DuNode> {
  const node = toNode(path, await v.aggregates(path));
  const attrs = await v.stat(path);
  if (depth === 0 || attrs.kind !== 'dir') return node;
  node.children = [];
  for (let after: string | undefined; ;) {
    const page = await v.readdir(path, { after, limit: PAGE });
    if (page.length === 0) break;
    for (const e of page) {
      if ((await v.getattr(e.id)).kind === 'dir') node.children.push(await describe(v, path === '/' ? `/${e.name}` : `${path}/${e.name}`, depth - 1));
    }
    after = page[page.length - 1]!.name;
  }
  // Pages come in the projection's hash order (docs/projection.md); du shows names in byte order.
  node.children.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  return node;
}

function toNode(path: string, a: Aggregates): DuNode {
  return { path, rbytes: a.rbytes, rfiles: a.rfiles, rsubdirs: a.rsubdirs, rctime: a.rctime.toString(), exact: a.exact };
}

/** Sizes as `du -h` prints them: powers of 1024, one decimal below 10. */
export function humanSize(bytes: number): string {
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  if (unit === 0) return `${n}B`;
  return `${n < 10 ? (Math.ceil(n * 10) / 10).toFixed(1) : Math.ceil(n).toString()}${UNITS[unit]}`;
}

function render(root: DuNode): string {
  const lines: string[] = [];
  const walk = (n: DuNode, prefix: string, label: string, childPrefix: string): void => {
    const mark = n.exact ? ' ' : '~';
    lines.push(`${mark}${humanSize(n.rbytes).padStart(6)}  ${String(n.rfiles).padStart(8)} files  ${String(n.rsubdirs).padStart(6)} dirs  ${prefix}${label}`);
    const kids = n.children ?? [];
    kids.forEach((c, i) => {
      const last = i === kids.length - 1;
      walk(c, `${childPrefix}${last ? '└── ' : '├── '}`, c.path.slice(c.path.lastIndexOf('/') + 1), `${childPrefix}${last ? '    ' : '│   '}`);
    });
  };
  walk(root, '', root.path, '');
  const footer = lines.some((l) => l.startsWith('~')) ? '~ not exact yet: changes are still being folded in (--exact waits)\n' : '';
  return `${lines.join('\n')}\n${footer}`;
}
