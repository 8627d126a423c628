// The control socket's protocol: one JSON document per line, one request per
// connection. The client writes a request line; the daemon answers with any
// number of output lines (a forwarded command's stdout and stderr), then one
// final line: a result, an error, or a forwarded command's exit status.

import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BazilError, ErrorCodes, type BazilErrorJSON, type ErrorCode, type ErrorData } from '../../errors/index.js';

export const SOCKET_FILE = 'daemon.sock';
export const LOG_FILE = 'daemon.log';
/** sun_path holds 108 bytes on Linux; a longer home gets its socket in the temp directory instead. */
const MAX_SOCKET_PATH = 100;
/** A request or reply line longer than this is refused (nothing legitimate comes close). */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface MountInfo {
  volume: string;
  dir: string;
  since: string;
  openFiles: number;
  /** A past-state mount's point, as written (`--at`), and the position it resolved to (`@N`). */
  at?: string;
  position?: string;
}

export interface DaemonStatus {
  pid: number;
  home: string;
  socket: string;
  log: string;
  started: string;
  mounts: MountInfo[];
}

export type DaemonRequest =
  | { op: 'status' }
  /** at: a point in history (docs/history.md) for a read-only mount of that past state. */
  | { op: 'mount'; volume: string; dir: string; at?: string }
  | { op: 'umount'; dir: string; force: boolean }
  | { op: 'stop' }
  /** A `bazil` command line, its local paths already made absolute by the client, and listed in localPaths. */
  | { op: 'run'; argv: string[]; localPaths: string[] };

export type DaemonReply =
  | { type: 'result'; data: unknown }
  | { type: 'error'; error: BazilErrorJSON }
  | { type: 'output'; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; code: number };

/** Where the daemon of `homeDir` listens: in the home, or (for long paths) a name derived from it in the temp directory. */
export function socketPath(homeDir: string): string {
  const inHome = join(homeDir, SOCKET_FILE);
  if (Buffer.byteLength(inHome) <= MAX_SOCKET_PATH) return inHome;
  const digest = createHash('sha256').update(homeDir).digest('hex').slice(0, 24);
  return join(tmpdir(), `bazil-${process.getuid?.() ?? 0}-${digest}.sock`);
}

export function logPath(homeDir: string): string {
  return join(homeDir, LOG_FILE);
}

/** Splits a byte stream into lines and parses each as JSON; a malformed or oversized line is an error. */
export class LineDecoder {
  private pending = '';

  constructor(private readonly onValue: (value: unknown) => void) {}

  push(chunk: string): void {
    this.pending += chunk;
    for (let nl = this.pending.indexOf('\n'); nl !== -1; nl = this.pending.indexOf('\n')) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      if (line.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new BazilError(ErrorCodes.BAD_ARGUMENT, `control socket: a line is not JSON: ${(err as Error).message}`);
      }
      this.onValue(value);
    }
    if (this.pending.length > MAX_LINE_BYTES) throw new BazilError(ErrorCodes.BAD_ARGUMENT, `control socket: a line is longer than ${MAX_LINE_BYTES} bytes`);
  }
}

export function encodeLine(value: DaemonRequest | DaemonReply): string {
  return `${JSON.stringify(value)}\n`;
}

/** Checks a request's shape; anything else is BAD_ARGUMENT. */
export function parseRequest(value: unknown): DaemonRequest {
  const r = value as Record<string, unknown> | null;
  const bad = (why: string): never => {
    throw new BazilError(ErrorCodes.BAD_ARGUMENT, `control socket: bad request: ${why}`);
  };
  if (typeof r !== 'object' || r === null || typeof r['op'] !== 'string') return bad('not an object with an op');
  switch (r['op']) {
    case 'status': case 'stop':
      return { op: r['op'] };
    case 'mount':
      if (typeof r['volume'] !== 'string' || typeof r['dir'] !== 'string') return bad('mount needs volume and dir');
      if (r['at'] !== undefined && typeof r['at'] !== 'string') return bad('mount\'s at must be a string');
      return r['at'] === undefined ? { op: 'mount', volume: r['volume'], dir: r['dir'] } : { op: 'mount', volume: r['volume'], dir: r['dir'], at: r['at'] };
    case 'umount':
      if (typeof r['dir'] !== 'string') return bad('umount needs dir');
      return { op: 'umount', dir: r['dir'], force: r['force'] === true };
    case 'run':
      if (!Array.isArray(r['argv']) || !r['argv'].every((a) => typeof a === 'string')) return bad('run needs argv, an array of strings');
      if (r['localPaths'] !== undefined && !(Array.isArray(r['localPaths']) && r['localPaths'].every((a) => typeof a === 'string'))) {
        return bad('localPaths must be an array of strings');
      }
      return { op: 'run', argv: r['argv'] as string[], localPaths: (r['localPaths'] as string[] | undefined) ?? [] };
    default:
      return bad(`unknown op ${JSON.stringify(r['op'])}`);
  }
}

/** A reply's error as a BazilError again, code and data kept. */
export function errorFromJSON(json: BazilErrorJSON): BazilError {
  const code = (Object.values(ErrorCodes) as string[]).includes(json.code) ? json.code : ErrorCodes.INTERNAL;
  return new BazilError(code as ErrorCode, json.message, (json.data ?? {}) as ErrorData);
}
