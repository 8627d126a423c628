// The client side of the control socket: finds the home's daemon, sends it
// one request and follows the replies; starts a detached daemon on demand.

import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import {
  encodeLine, errorFromJSON, LineDecoder, logPath, socketPath,
  type DaemonReply, type DaemonRequest, type DaemonStatus,
} from './protocol.js';

const START_TIMEOUT_MS = 20_000;
const START_POLL_MS = 50;
/** A daemon that accepts but never answers (stopped, wedged) is given this long for a status request. */
const STATUS_TIMEOUT_MS = 5_000;

/** A connection to the home's daemon, or undefined when none listens (no socket, or a stale one). */
export function connectDaemon(homeDir: string): Promise<Socket | undefined> {
  const path = socketPath(homeDir);
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      // ECONNREFUSED: a socket file with nobody behind it, left by a daemon that died; the next daemon removes it.
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') resolve(undefined);
      else reject(new BazilError(ErrorCodes.IO, `cannot reach the daemon at ${path}: ${err.message}`, { path }, err));
    });
  });
}

export interface CallOptions {
  /** A forwarded command's output, as it arrives. */
  onOutput?: (stream: 'stdout' | 'stderr', data: Buffer) => void;
  timeoutMs?: number;
}

export interface CallResult {
  data?: unknown;
  /** A forwarded command's exit status. */
  exit?: number;
}

/** Sends one request over an open connection and waits for its final reply. */
export function callOn(socket: Socket, request: DaemonRequest, options: CallOptions = {}): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      finish(new BazilError(ErrorCodes.IO, `the daemon did not answer ${request.op} within ${options.timeoutMs} ms`, { op: request.op }));
    }, options.timeoutMs);
    const finish = (outcome: CallResult | BazilError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof BazilError) reject(outcome);
      else resolve(outcome);
    };
    const decoder = new LineDecoder((value) => {
      const reply = value as DaemonReply;
      switch (reply.type) {
        case 'output': options.onOutput?.(reply.stream, Buffer.from(reply.data, 'base64')); break;
        case 'result': finish({ data: reply.data }); break;
        case 'exit': finish({ exit: reply.code }); break;
        case 'error': finish(errorFromJSON(reply.error)); break;
        default: finish(new BazilError(ErrorCodes.INTERNAL, 'the daemon sent a reply of an unknown type'));
      }
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        decoder.push(chunk);
      } catch (err) {
        finish(err as BazilError);
      }
    });
    socket.on('error', (err) => finish(new BazilError(ErrorCodes.IO, `control socket: ${err.message}`, {}, err)));
    socket.on('close', () => finish(new BazilError(ErrorCodes.IO, `the daemon closed the connection before answering ${request.op} (did it die? see ${'daemon.log'} in the home)`, { op: request.op })));
    socket.write(encodeLine(request));
  });
}

/** One request to the home's daemon; NOT_FOUND when no daemon runs. */
export async function callDaemon(homeDir: string, request: DaemonRequest, options: CallOptions = {}): Promise<CallResult> {
  const socket = await connectDaemon(homeDir);
  if (socket === undefined) throw new BazilError(ErrorCodes.NOT_FOUND, `no Bazil daemon runs for the home ${homeDir}`, { home: homeDir });
  return callOn(socket, request, options);
}

/** The daemon's status, or undefined when none runs. */
export async function daemonStatus(homeDir: string): Promise<DaemonStatus | undefined> {
  const socket = await connectDaemon(homeDir);
  if (socket === undefined) return undefined;
  const { data } = await callOn(socket, { op: 'status' }, { timeoutMs: STATUS_TIMEOUT_MS });
  return data as DaemonStatus;
}

/**
 * Starts `node MAIN daemon run --home HOME` detached (its output appended to
 * the home's daemon.log) and waits until it answers; returns its status.
 * If another daemon won the race to the home, that one's status is returned.
 */
export async function startDaemon(homeDir: string, cliMain: string): Promise<DaemonStatus> {
  const log = await open(logPath(homeDir), 'a', 0o600);
  let exited: string | undefined;
  try {
    const child = spawn(process.execPath, [cliMain, 'daemon', 'run', '--idle-exit', '--home', homeDir], {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      // The daemon must not keep the caller's directory busy (it may be a mount point-to-be).
      cwd: '/',
      env: { ...process.env, BAZIL_HOME: homeDir },
    });
    child.once('exit', (code, signal) => (exited = `exited with ${code ?? signal}`));
    child.unref();
  } finally {
    await log.close();
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const status = await daemonStatus(homeDir).catch(() => undefined);
    if (status !== undefined) return status;
    if (exited !== undefined || Date.now() > deadline) {
      throw new BazilError(ErrorCodes.IO, `the daemon did not start (${exited ?? 'no answer'}); see ${logPath(homeDir)}`, { home: homeDir });
    }
    await new Promise((r) => setTimeout(r, START_POLL_MS));
  }
}
