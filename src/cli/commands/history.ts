// `bazil log|show|diff|restore|snapshot`: a volume's history (docs/history.md).
// A point in history (WHEN) is `@N` (after the first N events of the merge
// order), a time ('2026-11-20 14:00', ISO 8601, '3h ago', '2 days ago',
// 'yesterday'), a snapshot name (or snap:NAME), or 'now'.

import type { Command } from 'commander';
import { BazilError, ErrorCodes, isBazilError } from '../../../errors/index.js';
import { hlcMs } from '../../log/hlc.js';
import { checkSnapshotName, describePoint, parseWhen, type Point } from '../../history/when.js';
import type { DiffResult, History, LogEntry } from '../../history/index.js';
import type { ProjectionReader, VolumeReader } from '../../volume/reader.js';
import type { Volume } from '../../volume/volume.js';
import { parseTarget, withVolume, type HomeOptions } from '../volume-access.js';
import { printResult } from '../output.js';
import { HOME_OPTION } from './init.js';

const PAGE = 1000;
const DEFAULT_LOG_LIMIT = 50;
/** `bazil log` names inodes by their current paths when the tree has at most this many nodes (a walk per call). */
const PATH_INDEX_LIMIT = 20_000;
const WHEN_HELP = "@N, a time ('2026-11-20 14:00', ISO 8601, '3h ago', '2 days ago', 'yesterday'), a snapshot name, or 'now'";

type Reader = VolumeReader<ProjectionReader>;

/** The history modules (checkpoints, replay, diff, restore), loaded only by the commands that use them. */
function historyModule(): Promise<typeof import('../../history/index.js')> {
  return import('../../history/index.js');
}

export function register(program: Command): void {
  program
    .command('log')
    .description("a volume's events, newest first: position, writer, time and a one-line summary")
    .argument('<volume>', 'the volume name')
    .argument('[path]', 'only events on the file or directory now at this path (for a directory: and its entries)')
    .option('-n, --limit <count>', `show at most this many events (0: all; default ${DEFAULT_LOG_LIMIT})`)
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (name: string, path: string | undefined, options: HomeOptions & { limit?: string }, cmd: Command) => {
      const limit = parseCount(options.limit, DEFAULT_LOG_LIMIT, '--limit');
      const rows = await withVolume(options, name, (v) => logRows(v, path === undefined ? undefined : parseTarget(`${name}:${path}`).path, limit));
      printResult(cmd, rows, () => rows.map((r) => `@${r.position}  ${r.writer.slice(0, 8)}  ${r.time}  ${r.summary}\n`).join(''));
    });

  program
    .command('show')
    .description('a file\'s content (to stdout), a directory\'s listing or a symlink\'s target, as of a point in history')
    .argument('<target>', 'VOL:PATH')
    .option('--at <when>', `the point in history: ${WHEN_HELP} (default: now)`)
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, options: HomeOptions & { at?: string }, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec, true);
      const point = parseWhen(options.at ?? 'now');
      await withVolume(options, name, (v) => atPoint(v, point, async (r) => {
        const attrs = await r.stat(path);
        if (attrs.kind === 'file') {
          for await (const piece of r.streamId(attrs.id, path)) {
            if (!process.stdout.write(piece)) await new Promise((resolve) => process.stdout.once('drain', resolve));
          }
          return;
        }
        if (attrs.kind === 'symlink') {
          const target = await r.readlinkId(attrs.id, path);
          printResult(cmd, { path, kind: 'symlink', target }, () => `${target}\n`);
          return;
        }
        if (attrs.kind !== 'dir') {
          printResult(cmd, { path, kind: attrs.kind }, () => `${path}: ${attrs.kind}\n`);
          return;
        }
        const rows: { name: string; kind: string; size: number; mode: string }[] = [];
        for (let page = await r.readdir(path, { limit: PAGE }); page.length > 0; page = await r.readdir(path, { after: page[page.length - 1]!.name, limit: PAGE })) {
          for (const e of page) {
            const a = await r.getattr(e.id);
            rows.push({ name: e.name, kind: a.kind, size: a.size, mode: a.mode.toString(8).padStart(4, '0') });
          }
        }
        rows.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
        printResult(cmd, rows, () => rows.map((row) => `${row.name}${row.kind === 'dir' ? '/' : ''}\n`).join(''));
      }));
    });

  program
    .command('diff')
    .description('what changed between two points in history: added, removed, modified, renamed')
    .argument('<target>', 'VOL[:PATH]: the volume (and the subtree to compare)')
    .argument('<from>', `the earlier point: ${WHEN_HELP}`)
    .argument('[to]', 'the later point (default: now)')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, from: string, to: string | undefined, options: HomeOptions, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec);
      const a = parseWhen(from);
      const b = parseWhen(to ?? 'now');
      const { diffTrees } = await historyModule();
      const diff = await withVolume(options, name, (v) => atPoint(v, a, (ra, h) => atPoint(v, b, (rb) => diffTrees(ra, rb, path), h)));
      printResult(cmd, diff, () => diffText(diff));
    });

  program
    .command('restore')
    .description('bring back a file or tree as it was at a point in history, as new events (the history in between is kept)')
    .argument('<target>', 'VOL:PATH (VOL:/ restores the whole volume)')
    .requiredOption('--at <when>', `the point in history: ${WHEN_HELP}`)
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, options: HomeOptions & { at: string }, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec, true);
      const point = parseWhen(options.at);
      const { restorePath } = await historyModule();
      const result = await withVolume(options, name, (v) => atPoint(v, point, (past) => restorePath(v, past, path)));
      printResult(cmd, { path, at: describePoint(point), ...result }, () =>
        `restored ${path} as of ${describePoint(point)}: ${result.events} events (${result.created} created, ${result.removed} removed, ${result.updated} updated)\n`);
    });

  const snapshot = program.command('snapshot').description('named points in a volume\'s history');
  snapshot
    .command('create')
    .description('name the volume\'s current state (one event)')
    .argument('<volume>', 'the volume name')
    .argument('<name>', 'the snapshot name: a file name that starts with a letter')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (name: string, snap: string, options: HomeOptions, cmd: Command) => {
      checkSnapshotName(snap);
      const { openHistory } = await historyModule();
      const made = await withVolume(options, name, async (v) => {
        const h = await openHistory(v);
        if ((await h.snapshots()).some((s) => s.name === snap)) {
          throw new BazilError(ErrorCodes.ALREADY_EXISTS, `volume '${name}' already has a snapshot named ${JSON.stringify(snap)}`, { name: snap });
        }
        await v.batch(async (b) => { await b.append({ type: 'snapshot', name: snap }); });
        return (await h.snapshots()).find((s) => s.name === snap)!;
      });
      const row = snapshotRow(made);
      printResult(cmd, row, () => `snapshot ${snap} of '${name}' at @${row.position} (${row.time})\n`);
    });
  snapshot
    .command('ls')
    .description('list the volume\'s snapshots')
    .argument('<volume>', 'the volume name')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (name: string, options: HomeOptions, cmd: Command) => {
      const { openHistory } = await historyModule();
      const rows = await withVolume(options, name, async (v) => (await (await openHistory(v)).snapshots()).map(snapshotRow));
      printResult(cmd, rows, () => rows.map((r) => `${r.name}  @${r.position}  ${r.time}  ${r.writer.slice(0, 8)}\n`).join(''));
    });
  snapshot
    .command('rm')
    .description('remove a snapshot name (one event; the state stays reachable by position or time)')
    .argument('<volume>', 'the volume name')
    .argument('<name>', 'the snapshot name')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (name: string, snap: string, options: HomeOptions, cmd: Command) => {
      const { openHistory } = await historyModule();
      await withVolume(options, name, async (v) => {
        const h = await openHistory(v);
        if (!(await h.snapshots()).some((s) => s.name === snap)) {
          throw new BazilError(ErrorCodes.UNKNOWN_SNAPSHOT, `volume '${name}' has no snapshot named ${JSON.stringify(snap)} (see \`bazil snapshot ls\`)`, { name: snap });
        }
        await v.batch(async (b) => { await b.append({ type: 'snapshot-rm', name: snap }); });
      });
      printResult(cmd, { removed: snap }, () => `removed snapshot ${snap} of '${name}'\n`);
    });
}

/**
 * Runs `work` on the volume as of `point`: the live volume for 'now', else
 * a past state replayed from the nearest checkpoint.
 */
export async function atPoint<T>(v: Volume, point: Point, work: (reader: Reader, history: History | undefined) => Promise<T>, history?: History): Promise<T> {
  if (point.kind === 'now') return work(v, history);
  const h = history ?? await (await historyModule()).openHistory(v);
  const past = (await h.at(point)).reader;
  try {
    return await work(past, h);
  } catch (err) {
    // "does not exist" alone would read as a statement about now.
    if (isBazilError(err, ErrorCodes.NOT_FOUND) && typeof err.data.path === 'string' && err.data.when === undefined) {
      throw new BazilError(ErrorCodes.NOT_FOUND, `${err.message} at ${describePoint(point)}`, { ...err.data, when: describePoint(point) }, err);
    }
    throw err;
  }
}

interface LogRow {
  position: string;
  id: string;
  writer: string;
  seq: string;
  time: string;
  type: string;
  summary: string;
}

async function logRows(v: Volume, path: string | undefined, limit: number): Promise<LogRow[]> {
  const { concerns, newestFirst, summarize, walkTree } = await historyModule();
  const only = path === undefined ? undefined : await v.resolve(path);
  const index = await walkTree(v, '/', { limit: PATH_INDEX_LIMIT, xattrs: false });
  const paths = new Map<string, string>();
  for (const [id, n] of index ?? []) paths.set(id, n.paths[0]!);
  const pathOf = (id: Uint8Array): string | undefined => paths.get(Buffer.from(id).toString('hex'));
  const rows: LogRow[] = [];
  for (const e of newestFirst(v.historySource().log)) {
    if (only !== undefined && !concerns(e, only)) continue;
    rows.push(logRow(e, pathOf, summarize));
    if (limit > 0 && rows.length >= limit) break;
  }
  return rows;
}

function logRow(e: LogEntry, pathOf: (id: Uint8Array) => string | undefined, summarize: (e: LogEntry, pathOf: (id: Uint8Array) => string | undefined) => string): LogRow {
  return {
    position: e.position.toString(), id: e.id.toString('hex'), writer: e.writer.toString('hex'), seq: e.seq.toString(),
    time: new Date(hlcMs(e.hlc)).toISOString(), type: e.body?.type ?? 'rejected', summary: summarize(e, pathOf),
  };
}

function snapshotRow(s: { name: string; count: bigint; hlc: bigint; writer: Buffer; seq: bigint }): { name: string; position: string; time: string; writer: string; seq: string } {
  return { name: s.name, position: s.count.toString(), time: new Date(hlcMs(s.hlc)).toISOString(), writer: s.writer.toString('hex'), seq: s.seq.toString() };
}

function diffText(d: DiffResult): string {
  const lines: [string, string][] = [
    ...d.renamed.map((r): [string, string] => [r.from, `R ${r.from} -> ${r.to}`]),
    ...d.added.map((a): [string, string] => [a.path, `A ${a.path}`]),
    ...d.removed.map((a): [string, string] => [a.path, `D ${a.path}`]),
    ...d.modified.map((m): [string, string] => [m.path, `M ${m.path} (${m.changes.join(', ')})`]),
  ];
  lines.sort((x, y) => Buffer.compare(Buffer.from(x[0]), Buffer.from(y[0])));
  return lines.map(([, l]) => `${l}\n`).join('');
}

function parseCount(raw: string | undefined, fallback: number, flag: string): number {
  if (raw === undefined) return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `${flag} takes a count (0 or more), got ${JSON.stringify(raw)}`, { [flag]: raw });
  return Number(raw);
}
