// `bazil import|export|ls|cat|stat|rebuild`: a volume's files, through the
// volume facade. A volume path is written VOL:PATH (PATH absolute, `/` when
// left out); volume names cannot hold ':', so the first one splits.

import type { Command } from 'commander';
import type { TreeProgress, TreeResult } from '../../volume/import-export.js';
import type { Volume, Attrs } from '../../volume/volume.js';
import { parseTarget, withVolume, type HomeOptions } from '../volume-access.js';
import { printResult, wantsJson } from '../output.js';
import { HOME_OPTION } from './init.js';
import { parseWhen } from '../../history/when.js';
import { commandSignal } from '../command-signal.js';
import { atPoint } from './history.js';

const PAGE = 1000;
const PROGRESS_EVERY_MS = 200;
const KIND_CHAR: Record<Attrs['kind'], string> = { dir: 'd', file: '-', symlink: 'l', fifo: 'p', socket: 's' };

export function register(program: Command): void {
  program
    .command('import')
    .description('copy a local directory tree into a volume (types, modes, owners, mtimes, symlinks, hard links)')
    .argument('<dir>', 'the local directory to import')
    .argument('<target>', 'VOL[:PATH]: a new or empty directory in the volume (default: its root)')
    .option('--no-xattrs', 'do not copy extended attributes (user.* and, as root, trusted.*)')
    .option('--update', 'the target may hold an earlier import: make it a copy of <dir>, writing events only for what changed (removes what <dir> no longer has)')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (dir: string, spec: string, options: HomeOptions & { xattrs: boolean; update?: boolean }, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec);
      const { importTree } = await import('../../volume/import-export.js');
      const { fileImportSealing } = await import('../../cas/content-store.js');
      const progress = progressLine(cmd);
      const result = await withVolume(options, name, (v) => importTree(v, dir, path, { onProgress: progress.update, xattrs: options.xattrs, update: options.update === true, signal: commandSignal() }), fileImportSealing()).finally(progress.done);
      const summary = { ...summarize(result), newBytes: result.newBytes, events: result.events, unchanged: result.unchanged, removed: result.removed };
      printResult(cmd, summary, () => `imported ${describeTree(result)}, ${mb(result.newBytes)} MB new content, ${result.events} events\n`);
    });

  program
    .command('export')
    .description('copy a volume tree (or file) to the local filesystem')
    .argument('<source>', 'VOL[:PATH]: what to export (default: the whole volume)')
    .argument('<dir>', 'where to write it: a new or empty directory (a file is written at this path)')
    .option('--no-xattrs', 'do not set extended attributes on the exported files')
    .option('--at <when>', "export the state at this point in history: @N, a time ('2026-11-20 14:00', '3h ago'), a snapshot name (default: now)")
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, dir: string, options: HomeOptions & { xattrs: boolean; at?: string }, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec);
      const point = parseWhen(options.at ?? 'now');
      const { exportTree } = await import('../../volume/import-export.js');
      const progress = progressLine(cmd);
      const result = await withVolume(options, name, (v) => atPoint(v, point, (r) =>
        exportTree(r, path, dir, { onProgress: progress.update, xattrs: options.xattrs, signal: commandSignal() }))).finally(progress.done);
      printResult(cmd, summarize(result), () => `exported ${describeTree(result)}\n`);
    });

  program
    .command('ls')
    .description('list a directory of a volume (or show one entry)')
    .argument('<target>', 'VOL[:PATH]')
    .option('-l, --long', 'long format: mode, links, owner, group, size, mtime, name')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, options: HomeOptions & { long?: boolean }, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec);
      const rows = await withVolume(options, name, (v) => listing(v, path));
      printResult(cmd, rows, () => rows.map((r) => (options.long === true ? `${longLine(r)}\n` : `${r.name}\n`)).join(''));
    });

  program
    .command('cat')
    .description("write a file's content to stdout")
    .argument('<target>', 'VOL:PATH')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, options: HomeOptions) => {
      const { volume: name, path } = parseTarget(spec, true);
      await withVolume(options, name, async (v) => {
        for await (const piece of v.createReadStream(path)) {
          if (!process.stdout.write(piece)) await new Promise((resolve) => process.stdout.once('drain', resolve));
        }
      });
    });

  program
    .command('stat')
    .description("show an entry's attributes")
    .argument('<target>', 'VOL:PATH')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (spec: string, options: HomeOptions, cmd: Command) => {
      const { volume: name, path } = parseTarget(spec, true);
      const info = await withVolume(options, name, async (v) => {
        const attrs = await v.stat(path);
        return statJson(path, attrs, attrs.kind === 'symlink' ? await v.readlinkId(attrs.id, path) : null);
      });
      printResult(cmd, info, () => Object.entries(info).filter(([, val]) => val !== null).map(([k, val]) => `${k.padStart(7)}: ${String(val)}\n`).join(''));
    });

  program
    .command('rebuild')
    .description("drop a volume's projection and replay its whole log")
    .argument('<volume>', 'the volume name')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (name: string, options: HomeOptions, cmd: Command) => {
      const result = await withVolume(options, name, (v) => v.rebuild());
      const ms = Math.round(result.ms);
      printResult(cmd, { volume: name, events: result.events, ms }, () =>
        `rebuilt the projection of '${name}': ${result.events} events in ${ms} ms (${Math.round(result.events / Math.max(result.ms, 1) * 1000)} events/s)\n`);
    });

  program
    .command('fsck')
    .description('check a volume: every arena record, every event (signature, chain, body), every object of every file, and the projection against a replay of the log; exits 1 when anything is wrong')
    .argument('<volume>', 'the volume name')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (name: string, options: HomeOptions, cmd: Command) => {
      const tty = process.stderr.isTTY === true;
      const report = await withVolume(options, name, (v) => v.fsck({
        onProgress: (phase) => {
          if (tty) process.stderr.write(`\rchecking ${phase}...        `);
        },
      }));
      if (tty) process.stderr.write('\r\x1b[K');
      const c = report.counts;
      printResult(cmd, report, () => {
        const lines = report.problems.map((p) => `${p.area}: ${p.message} [${p.code}]\n`);
        const summary = `${report.ok ? 'clean' : `${report.problems.length} problem(s)`}: ${c.records} arena records, ${c.events} events, ${c.files} files, ${c.objects} objects checked in ${report.ms} ms\n`;
        return lines.join('') + summary;
      });
      if (!report.ok) process.exitCode = 1;
    });
}

interface StatJson {
  path: string;
  id: string;
  kind: Attrs['kind'];
  mode: string;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  /** Times in ns since the epoch, as decimal strings (JSON numbers would lose digits). */
  mtimeNs: string;
  ctimeNs: string;
  atimeNs: string;
  mtime: string;
  target: string | null;
}

function statJson(path: string, a: Attrs, target: string | null): StatJson {
  return {
    path, id: a.id.toString('hex'), kind: a.kind, mode: a.mode.toString(8).padStart(4, '0'), uid: a.uid, gid: a.gid,
    size: a.size, nlink: a.nlink, mtimeNs: a.mtime.toString(), ctimeNs: a.ctime.toString(), atimeNs: a.atime.toString(),
    mtime: isoTime(a.mtime), target,
  };
}

interface Row extends StatJson {
  name: string;
}

/** Every entry of a directory (all pages), or the one entry a non-directory path names. */
async function listing(v: Volume, path: string): Promise<Row[]> {
  const attrs = await v.stat(path);
  const row = async (name: string, entryPath: string, a: Attrs): Promise<Row> =>
    ({ name, ...statJson(entryPath, a, a.kind === 'symlink' ? await v.readlinkId(a.id, entryPath) : null) });
  if (attrs.kind !== 'dir') return [await row(path.slice(path.lastIndexOf('/') + 1), path, attrs)];
  const rows: Row[] = [];
  for (let page = await v.readdir(path, { limit: PAGE }); page.length > 0; page = await v.readdir(path, { after: page[page.length - 1]!.name, limit: PAGE })) {
    for (const e of page) rows.push(await row(e.name, path === '/' ? `/${e.name}` : `${path.replace(/\/$/, '')}/${e.name}`, await v.getattr(e.id)));
  }
  // Pages come in the projection's hash order (docs/projection.md); ls lists names in byte order.
  return rows.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

function longLine(r: Row): string {
  const mode = KIND_CHAR[r.kind] + modeString(parseInt(r.mode, 8));
  return `${mode} ${String(r.nlink).padStart(3)} ${String(r.uid).padStart(5)} ${String(r.gid).padStart(5)} ${String(r.size).padStart(10)} ${r.mtime} ${r.name}${r.target === null ? '' : ` -> ${r.target}`}`;
}

/** rwx triplets as ls prints them, with setuid/setgid/sticky. */
function modeString(mode: number): string {
  const special = [[0o4000, 's', 'S'], [0o2000, 's', 'S'], [0o1000, 't', 'T']] as const;
  let out = '';
  for (let i = 0; i < 3; i++) {
    const bits = (mode >> (6 - 3 * i)) & 7;
    const [flag, withX, withoutX] = special[i]!;
    const x = (mode & flag) !== 0 ? (bits & 1 ? withX : withoutX) : bits & 1 ? 'x' : '-';
    out += `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${x}`;
  }
  return out;
}

function isoTime(ns: bigint): string {
  const ms = ns / 1_000_000n;
  return new Date(Number(ms)).toISOString().replace(/\.\d+Z$/, `.${(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0')}Z`);
}

function summarize(r: TreeResult): TreeResult & { mbPerSecond: number } {
  return { ...r, ms: Math.round(r.ms), mbPerSecond: Number((r.bytes / 1e6 / Math.max(r.ms / 1000, 1e-3)).toFixed(1)) };
}

function describeTree(r: TreeResult): string {
  const s = summarize(r);
  const extra = [r.symlinks > 0 ? `${r.symlinks} symlinks` : '', r.links > 0 ? `${r.links} hard links` : '', r.skipped > 0 ? `${r.skipped} skipped (special files)` : '']
    .filter((x) => x !== '').map((x) => `, ${x}`).join('');
  return `${r.files} files, ${r.dirs} dirs${extra}, ${mb(r.bytes)} MB in ${(r.ms / 1000).toFixed(2)} s (${s.mbPerSecond} MB/s)`;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** A progress line on stderr, only for a person watching (a TTY, no --json). */
function progressLine(cmd: Command): { update: (p: TreeProgress) => void; done: () => void } {
  const live = process.stderr.isTTY && !wantsJson(cmd);
  let last = 0;
  let shown = false;
  return {
    update: (p) => {
      const now = Date.now();
      if (!live || now - last < PROGRESS_EVERY_MS) return;
      last = now;
      shown = true;
      process.stderr.write(`\r${p.files} files, ${mb(p.bytes)} MB\u001b[K`);
    },
    done: () => {
      if (shown) process.stderr.write('\r\u001b[K');
    },
  };
}
