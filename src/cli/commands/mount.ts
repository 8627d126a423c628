// `bazil mount|umount|mounts|daemon`: mounts live in the home's daemon
// (docs/mount.md). `mount` starts the daemon when none runs (detached, or
// in this process with --foreground) and asks it to mount; the others talk
// to it over its control socket.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Command } from 'commander';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BazilError, ErrorCodes } from '../../../errors/index.js';
import { callDaemon, daemonStatus, startDaemon } from '../../daemon/client.js';
import type { CommandRunner } from '../../daemon/daemon.js';
import { socketPath, type DaemonStatus, type MountInfo } from '../../daemon/protocol.js';
import { findFuseConnection, freeWedgedMount } from '../../fuse/free-mount.js';
import { parseWhen } from '../../history/when.js';
import { resolveHomeDir } from '../../home/home-dir.js';
import { runWithSignal } from '../command-signal.js';
import { printResult } from '../output.js';
import { run } from '../program.js';
import { installVolumeProvider, type HomeOptions } from '../volume-access.js';
import { HOME_OPTION } from './init.js';

/** The compiled CLI entry point, which the detached daemon runs. */
const CLI_MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** The forwarded command a piece of code runs for, across its awaits. */
const forwardedCommand = new AsyncLocalStorage<{ stdout(data: string | Uint8Array): void }>();
let stdoutRouted = false;

/**
 * A few commands stream bytes to process.stdout themselves (`cat`), not
 * through the program's writers; in the daemon those bytes belong to the
 * forwarded command whose code wrote them, so the daemon's stdout sends
 * them there and keeps everything else for its log.
 */
function routeStdout(): void {
  if (stdoutRouted) return;
  stdoutRouted = true;
  const original = process.stdout.write.bind(process.stdout) as (...args: unknown[]) => boolean;
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const command = forwardedCommand.getStore();
    if (command === undefined) return original(chunk, ...rest);
    command.stdout(chunk);
    const done = rest.find((r): r is () => void => typeof r === 'function');
    if (done !== undefined) queueMicrotask(done);
    return true;
  }) as typeof process.stdout.write;
}

/**
 * Forwarded commands run through the same program, output captured for the
 * socket. A command that reports failure through process.exitCode (fsck
 * with problems) sets it for itself, not for the daemon.
 */
const runForwarded: CommandRunner = (argv, io) => forwardedCommand.run({ stdout: (data) => io.stdout(data) }, () => runWithSignal(io.signal, async () => {
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    const code = await run(['node', 'bazil', ...argv], {
      io: { stdout: (text) => io.stdout(text), stderr: (text) => io.stderr(text) },
    });
    return code !== 0 ? code : Number(process.exitCode ?? 0);
  } finally {
    process.exitCode = before;
  }
}));

/**
 * Runs the home's daemon in this process until it stops (SIGTERM and
 * SIGINT stop it cleanly: unmount, close, remove the socket).
 */
async function runDaemon(homeDir: string, exitWhenIdle: boolean, firstMount?: { volume: string; dir: string; at?: string }, onMounted?: (m: MountInfo) => void): Promise<void> {
  // The daemon's modules (FUSE, the volumes, history) are loaded only when a daemon runs here.
  const { Daemon } = await import('../../daemon/daemon.js');
  const daemon = await Daemon.start({ homeDir, runCommand: runForwarded, exitWhenIdle });
  installVolumeProvider(daemon);
  routeStdout();
  // The detached daemon's environment names its home, so forwarded commands without --home find it.
  process.env.BAZIL_HOME = daemon.homeDir;
  const stop = (): void => void daemon.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', stop);
  try {
    if (firstMount !== undefined) {
      try {
        onMounted?.(await daemon.mount(firstMount.volume, firstMount.dir, firstMount.at));
      } catch (err) {
        await daemon.stop();
        throw err;
      }
    }
    await daemon.stopped;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.off('SIGHUP', stop);
    installVolumeProvider(undefined);
  }
}

export function register(program: Command): void {
  program
    .command('mount')
    .description('mount a volume at a directory, in the home\'s daemon (started if needed): read-write, or read-only as of a point in history with --at')
    .argument('<volume>', 'the volume to mount')
    .argument('<dir>', 'an existing directory: the mount point')
    .option('--at <when>', "mount the state at this point in history, read-only: @N, a time ('2026-11-20 14:00', '3h ago'), a snapshot name")
    .option('--foreground', 'run the daemon in this process and stay attached until it stops (Ctrl-C unmounts)')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (volume: string, dir: string, options: HomeOptions & { foreground?: boolean; at?: string }, cmd: Command) => {
      const homeDir = resolveHomeDir(options.home);
      const target = resolve(dir);
      // A malformed point fails here, before any daemon starts; the daemon checks it against the log before mounting.
      if (options.at !== undefined) parseWhen(options.at);
      const first = { volume, dir: target, ...(options.at === undefined ? {} : { at: options.at }) };
      const report = (m: MountInfo, pid: number): void =>
        printResult(cmd, { ...m, pid }, () => `mounted ${m.volume} at ${m.dir}${m.at === undefined ? '' : ` read-only as of ${m.at} (${m.position})`} (daemon ${pid})\n`);
      if (options.foreground === true) {
        await runDaemon(homeDir, true, first, (m) => report(m, process.pid));
        return;
      }
      const status = (await daemonStatus(homeDir)) ?? (await startDaemon(homeDir, CLI_MAIN));
      const { data } = await callDaemon(homeDir, { op: 'mount', ...first });
      report(data as MountInfo, status.pid);
    });

  program
    .command('umount')
    .description('unmount a volume mounted by the home\'s daemon')
    .argument('<dir>', 'the mount point')
    .option('--force', 'also free a wedged mount (its daemon hung or died): abort the FUSE connection and detach it')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (dir: string, options: HomeOptions & { force?: boolean }, cmd: Command) => {
      const homeDir = resolveHomeDir(options.home);
      const target = resolve(dir);
      const force = options.force === true;
      const status = await daemonStatus(homeDir).catch((err: unknown) => {
        // A daemon that accepts but never answers is wedged: --force works without it.
        if (force) return undefined;
        throw err;
      });
      if (status !== undefined && status.mounts.some((m) => m.dir === target)) {
        await callDaemon(homeDir, { op: 'umount', dir: target, force });
      } else if (force) {
        if (!(await freeWedgedMount(target))) throw new BazilError(ErrorCodes.NOT_FOUND, `nothing is mounted at ${target}`, { path: target });
      } else if ((await findFuseConnection(target)) !== undefined) {
        throw new BazilError(ErrorCodes.NOT_FOUND, `${target} is a FUSE mount that no running Bazil daemon of ${homeDir} serves; free it with \`bazil umount --force ${target}\``, { path: target });
      } else {
        throw new BazilError(ErrorCodes.NOT_FOUND, `nothing is mounted at ${target}`, { path: target });
      }
      printResult(cmd, { dir: target, forced: force }, () => `unmounted ${target}\n`);
    });

  program
    .command('mounts')
    .description('list the mounts of the home\'s daemon')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (options: HomeOptions, cmd: Command) => {
      const status = await daemonStatus(resolveHomeDir(options.home));
      const mounts = status?.mounts ?? [];
      printResult(cmd, mounts, () => mounts.length === 0
        ? 'no mounts\n'
        : mounts.map((m) => `${m.volume}\t${m.dir}\t${m.at === undefined ? 'read-write' : `read-only as of ${m.at} (${m.position})`}\t${m.openFiles} open\tsince ${m.since}\n`).join(''));
    });

  const daemon = program.command('daemon').description('the home\'s daemon: it holds the mounts and serves every other command while it runs');

  daemon
    .command('status')
    .description('whether the daemon runs: pid, socket, log, mounts')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (options: HomeOptions, cmd: Command) => {
      const homeDir = resolveHomeDir(options.home);
      const status = await daemonStatus(homeDir);
      if (status === undefined) await removeStaleSocket(homeDir);
      printResult(cmd, status ?? { running: false, home: homeDir }, () => describe(status, homeDir));
    });

  daemon
    .command('stop')
    .description('unmount everything cleanly and stop the daemon')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (options: HomeOptions, cmd: Command) => {
      const homeDir = resolveHomeDir(options.home);
      const status = await daemonStatus(homeDir);
      if (status === undefined) {
        printResult(cmd, { running: false, home: homeDir }, () => describe(undefined, homeDir));
        return;
      }
      await callDaemon(homeDir, { op: 'stop' });
      await waitForExit(status.pid);
      printResult(cmd, { stopped: true, pid: status.pid }, () => `stopped daemon ${status.pid}\n`);
    });

  daemon
    .command('run')
    .description('run the daemon in this process (what `bazil mount` starts in the background)')
    .option('--idle-exit', 'stop once the last mount is unmounted')
    .option(HOME_OPTION.flags, HOME_OPTION.description)
    .action(async (options: HomeOptions & { idleExit?: boolean }) => {
      await runDaemon(resolveHomeDir(options.home), options.idleExit === true);
    });
}

function describe(status: DaemonStatus | undefined, homeDir: string): string {
  if (status === undefined) return `no daemon runs for ${homeDir}\n`;
  const mounts = status.mounts.map((m) => `  ${m.volume} at ${m.dir}${m.at === undefined ? '' : ` as of ${m.at} (${m.position}, read-only)`} (${m.openFiles} open)\n`).join('');
  return `daemon ${status.pid} serving ${status.home} since ${status.started}\nsocket ${status.socket}\nlog ${status.log}\n${status.mounts.length} mount(s)\n${mounts}`;
}

/** With no daemon answering, a socket file is a dead daemon's: taking the home's lock proves it, then it goes. */
async function removeStaleSocket(homeDir: string): Promise<void> {
  const { openHome } = await import('../../home/home.js');
  const home = await openHome(homeDir).catch(() => undefined);
  if (home === undefined) return;
  try {
    await rm(socketPath(homeDir), { force: true });
  } finally {
    await home.close();
  }
}

async function waitForExit(pid: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new BazilError(ErrorCodes.IO, `daemon ${pid} did not exit within 30 s`, { pid });
}
