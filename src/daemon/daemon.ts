// The home's daemon (DESIGN.md, "Homes, volumes, processes"; docs/mount.md):
// one process holds the home's lock, any number of mounts of its volumes,
// and a control socket through which every other `bazil` command of that
// home reaches the volumes it holds open.

import { rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { freeWedgedMount } from '../fuse/free-mount.js';
import { mountPast, mountVolume, type Mounted } from '../fuse/mount.js';
import { PastTree } from '../fuse/past-tree.js';
import { describePoint, openHistory, parseWhen } from '../history/index.js';
import { openHome, type Home } from '../home/home.js';
import { Volume } from '../volume/volume.js';
import { connectDaemon } from './client.js';
import {
  encodeLine, LineDecoder, logPath, parseRequest, socketPath,
  type DaemonReply, type DaemonRequest, type DaemonStatus, type MountInfo,
} from './protocol.js';

/** Runs a forwarded `bazil` command line in this process with its output captured; returns its exit status. */
export type CommandRunner = (argv: string[], io: {
  stdout(text: string | Uint8Array): void;
  stderr(text: string | Uint8Array): void;
  /** Aborted when the client goes away before the command ends (Ctrl-C of the forwarding `bazil`). */
  signal: AbortSignal;
}) => Promise<number>;

export interface DaemonOptions {
  homeDir: string;
  /** How forwarded commands run; without it, `run` requests are refused. */
  runCommand?: CommandRunner;
  /** Stop once the last mount is gone (a daemon started on demand by `bazil mount`). */
  exitWhenIdle?: boolean;
  log?: (line: string) => void;
  /**
   * How a volume is opened on the daemon's home; the default is
   * Volume.open with the home shared. Crash tests put the volumes' arenas
   * on the fault-injecting file layer here.
   */
  openVolume?: (home: Home, name: string) => Promise<Volume>;
}

/** How long stop() waits for requests being answered before closing the volumes anyway. */
const STOP_GRACE_MS = 10_000;

interface OpenedVolume {
  volume: Promise<Volume>;
  users: number;
}

interface MountRecord {
  mount: Mounted;
  since: string;
  /** A past-state mount's point as asked for, and the position it resolved to. */
  at?: { text: string; position: string };
}

/** A volume lent out by the daemon; release() when done with it. */
export interface VolumeLease {
  volume: Volume;
  release(): Promise<void>;
}

export class Daemon {
  private readonly volumes = new Map<string, OpenedVolume>();
  private readonly mounts = new Map<string, MountRecord>();
  /** Each mount's hold on its volume, by mount point. */
  private readonly leases = new Map<string, VolumeLease>();
  private readonly connections = new Set<Socket>();
  private readonly started = new Date().toISOString();
  private running = 0;
  /** Requests received and not yet answered. */
  private answering = 0;
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  /** Resolves once the daemon has stopped: mounts gone, volumes and home closed, socket removed. */
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private readonly log: (line: string) => void;

  private constructor(
    readonly home: Home,
    private readonly server: Server,
    readonly socket: string,
    private readonly options: DaemonOptions,
  ) {
    this.log = options.log ?? ((line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`));
  }

  /**
   * Takes the home (its lock: no other process can open it meanwhile),
   * removes a stale socket left by a dead daemon, and listens.
   */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const homeDir = resolve(options.homeDir);
    const path = socketPath(homeDir);
    const live = await connectDaemon(homeDir);
    if (live !== undefined) {
      live.destroy();
      throw new BazilError(ErrorCodes.LOCKED, `a Bazil daemon already runs for the home ${homeDir} (socket ${path})`, { home: homeDir, path });
    }
    const home = await openHome(homeDir);
    try {
      // Under the home's lock no daemon can be alive, so a socket file here is a dead one's.
      await rm(path, { force: true });
      const server = createServer();
      await new Promise<void>((resolvePromise, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.removeListener('error', reject);
          resolvePromise();
        });
      });
      const daemon = new Daemon(home, server, path, { ...options, homeDir });
      server.on('connection', (socket) => daemon.serve(socket));
      daemon.log(`daemon ${process.pid} serving ${homeDir} on ${path}`);
      return daemon;
    } catch (err) {
      await home.close();
      throw err;
    }
  }

  get homeDir(): string {
    return this.home.dir;
  }

  status(): DaemonStatus {
    return {
      pid: process.pid,
      home: this.home.dir,
      socket: this.socket,
      log: logPath(this.home.dir),
      started: this.started,
      mounts: this.mountList(),
    };
  }

  mountList(): MountInfo[] {
    return [...this.mounts.values()].map(({ mount, since, at }) => ({
      volume: mount.volumeName, dir: mount.dir, since, openFiles: mount.openCount(),
      ...(at === undefined ? {} : { at: at.text, position: at.position }),
    }));
  }

  /** Lends volume `name`, opening it on the daemon's home if no one holds it yet. */
  async acquire(name: string): Promise<VolumeLease> {
    this.checkRunning();
    let entry = this.volumes.get(name);
    if (entry === undefined) {
      const opening = this.options.openVolume?.(this.home, name) ?? Volume.open(this.home.dir, name, { home: this.home });
      entry = { volume: opening, users: 0 };
      this.volumes.set(name, entry);
      opening.catch(() => this.volumes.delete(name));
    }
    entry.users += 1;
    const held = entry;
    let volume: Volume;
    try {
      volume = await held.volume;
    } catch (err) {
      held.users -= 1;
      throw err;
    }
    let released = false;
    return {
      volume,
      release: async () => {
        if (released) return;
        released = true;
        held.users -= 1;
        if (held.users === 0 && this.volumes.get(name) === held) {
          this.volumes.delete(name);
          await volume.close();
        }
      },
    };
  }

  /**
   * Mounts volume `volumeName` at `dir`: read-write and live, or with `at`
   * read-only as of that point in history. A bad point fails (with the
   * history's errors) before anything is mounted.
   */
  async mount(volumeName: string, dir: string, at?: string): Promise<MountInfo> {
    this.checkRunning();
    const target = resolve(dir);
    if (this.mounts.has(target)) throw new BazilError(ErrorCodes.ALREADY_EXISTS, `${target} is already a mount of this daemon`, { path: target });
    const point = at === undefined ? undefined : parseWhen(at);
    const lease = await this.acquire(volumeName);
    let record: MountRecord;
    try {
      if (point === undefined) {
        record = { mount: await mountVolume(lease.volume, target, { log: this.log }), since: new Date().toISOString() };
      } else {
        const asOf = await (await openHistory(lease.volume)).at(point);
        const mount = await mountPast(lease.volume, new PastTree(asOf), target, { log: this.log });
        record = { mount, since: new Date().toISOString(), at: { text: at!, position: `@${asOf.count}` } };
      }
    } catch (err) {
      await lease.release();
      this.stopIfIdle();
      throw err;
    }
    this.mounts.set(target, record);
    this.leases.set(target, lease);
    this.log(`mounted ${volumeName} at ${target}${point === undefined ? '' : ` read-only as of ${describePoint(point)} (${record.at!.position})`}`);
    return this.mountList().find((m) => m.dir === target)!;
  }

  /**
   * Unmounts `dir`. force: the kernel connection is aborted first
   * (fusectl), which fails whatever is pending there, then the mount is
   * detached; for a mount that no longer answers.
   */
  async umount(dir: string, force: boolean): Promise<void> {
    const target = resolve(dir);
    const record = this.mounts.get(target);
    if (record === undefined) throw new BazilError(ErrorCodes.NOT_FOUND, `${target} is not mounted by this daemon`, { path: target });
    this.mounts.delete(target);
    try {
      if (force) await freeWedgedMount(target);
      await record.mount.unmount();
    } finally {
      await this.leases.get(target)?.release();
      this.leases.delete(target);
      this.log(`unmounted ${target}${force ? ' (forced)' : ''}`);
    }
    this.stopIfIdle();
  }

  /** Unmounts everything cleanly, closes the volumes and the home, and removes the socket. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.log('stopping');
      // No new connections from now on; the server is closed once the open ones are gone (below).
      const closed = new Promise<void>((r) => this.server.close(() => r()));
      for (const target of [...this.mounts.keys()]) {
        await this.umount(target, false).catch((err: unknown) => this.log(`unmount ${target} failed: ${String(err)}`));
      }
      // Requests still being answered (the umount that made an idle daemon stop, forwarded
      // commands) finish first; after a while the volumes are closed underneath them.
      for (let waited = 0; this.answering > 0 && waited < STOP_GRACE_MS; waited += 50) await new Promise((r) => setTimeout(r, 50));
      for (const [name, entry] of this.volumes) {
        this.volumes.delete(name);
        await entry.volume.then((v) => v.close(), () => undefined);
      }
      for (const socket of this.connections) socket.destroy();
      await closed;
      await rm(this.socket, { force: true });
      await this.home.close();
      this.log('stopped');
      this.resolveStopped();
    })();
    return this.stopping;
  }

  /**
   * A forwarded command runs on the daemon's thread, and some of its file
   * calls are synchronous (the xattr addon): one on a path inside a mount
   * this daemon serves would wait for the daemon itself, forever.
   */
  private checkOutsideMounts(paths: readonly string[]): void {
    for (const path of paths) {
      for (const dir of this.mounts.keys()) {
        if (path === dir || path.startsWith(`${dir}/`)) {
          throw new BazilError(
            ErrorCodes.BAD_ARGUMENT,
            `${path} is inside ${dir}, which this daemon serves; a command it runs cannot use a path in its own mount (name the volume path instead, VOL:PATH)`,
            { path, mount: dir },
          );
        }
      }
    }
  }

  private checkRunning(): void {
    if (this.stopping !== undefined) throw new BazilError(ErrorCodes.CLOSED, 'the daemon is stopping');
  }

  private stopIfIdle(): void {
    if (this.options.exitWhenIdle === true && this.mounts.size === 0 && this.running === 0 && this.stopping === undefined) {
      void this.stop();
    }
  }

  private serve(socket: Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let handled = false;
    let answered = false;
    // The client waits on this connection until the final reply: its closing first means the client went away.
    const gone = new AbortController();
    socket.on('close', () => {
      if (!answered) gone.abort(new BazilError(ErrorCodes.ABORTED, 'the client went away'));
    });
    const send = (reply: DaemonReply): void => {
      if (!socket.destroyed) socket.write(encodeLine(reply));
    };
    const decoder = new LineDecoder((value) => {
      if (handled) return;
      handled = true;
      let request: DaemonRequest;
      try {
        request = parseRequest(value);
      } catch (err) {
        send(errorReply(err));
        socket.end();
        return;
      }
      this.answering += 1;
      this.handle(request, send, gone.signal).then(
        (final) => send(final),
        (err: unknown) => send(errorReply(err)),
      ).finally(() => {
        answered = true;
        socket.end();
        this.answering -= 1;
      });
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        send(errorReply(err));
        socket.end();
      }
    });
  }

  private async handle(request: DaemonRequest, send: (reply: DaemonReply) => void, signal: AbortSignal): Promise<DaemonReply> {
    switch (request.op) {
      case 'status':
        return { type: 'result', data: this.status() };
      case 'mount':
        return { type: 'result', data: await this.mount(request.volume, request.dir, request.at) };
      case 'umount':
        await this.umount(request.dir, request.force);
        return { type: 'result', data: { dir: resolve(request.dir) } };
      case 'stop':
        // Answered first: stopping closes this connection among others.
        setImmediate(() => void this.stop());
        return { type: 'result', data: { pid: process.pid } };
      case 'run': {
        const runner = this.options.runCommand;
        if (runner === undefined) throw new BazilError(ErrorCodes.BAD_ARGUMENT, 'this daemon does not run commands');
        this.checkRunning();
        this.checkOutsideMounts(request.localPaths);
        this.running += 1;
        try {
          const aborted = (): void => this.log(`forwarded command aborted, its client went away: bazil ${request.argv.join(' ')}`);
          signal.addEventListener('abort', aborted, { once: true });
          try {
            const code = await runner(request.argv, {
              stdout: (data) => send({ type: 'output', stream: 'stdout', data: Buffer.from(data).toString('base64') }),
              stderr: (data) => send({ type: 'output', stream: 'stderr', data: Buffer.from(data).toString('base64') }),
              signal,
            });
            if (signal.aborted) this.log(`forwarded command ended (exit ${code}) after its client went away: bazil ${request.argv.join(' ')}`);
            return { type: 'exit', code };
          } finally {
            signal.removeEventListener('abort', aborted);
          }
        } finally {
          this.running -= 1;
          this.stopIfIdle();
        }
      }
    }
  }
}

function errorReply(err: unknown): DaemonReply {
  const e = err instanceof BazilError ? err : new BazilError(ErrorCodes.INTERNAL, err instanceof Error ? err.message : String(err));
  return { type: 'error', error: e.toJSON() };
}
