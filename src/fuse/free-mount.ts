// Frees a wedged FUSE mount: one whose server hangs or died without
// unmounting, so that every access to it blocks (DESIGN.md, "FUSE in tests").
//
// Nothing here touches the mount point itself (no stat, no realpath): that
// could block forever. The connection is found in /proc/self/mountinfo by
// the mount's device number, aborted through fusectl (which fails every
// pending and future request with ENOTCONN), and then the mount point is
// detached with umount -l.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CONNECTIONS = '/sys/fs/fuse/connections';

interface MountInfo {
  readonly major: number;
  readonly minor: number;
  readonly mountPoint: string;
  readonly fsType: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

async function readMountinfo(): Promise<MountInfo[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    const [major, minor] = (fields[2] ?? '').split(':').map(Number);
    const mountPoint = fields[4];
    const fsType = separator > 0 ? fields[separator + 1] : undefined;
    if (major === undefined || minor === undefined || mountPoint === undefined || fsType === undefined) continue;
    mounts.push({ major, minor, mountPoint: unescapeMountinfo(mountPoint), fsType });
  }
  return mounts;
}

/**
 * The fusectl connection number of the FUSE filesystem mounted at dir (the
 * last one when mounts are stacked), or undefined when none is mounted there.
 * fusectl names a connection by the kernel's dev_t: (major << 20) | minor.
 */
export async function findFuseConnection(dir: string): Promise<number | undefined> {
  const target = resolve(dir);
  const found = (await readMountinfo()).filter((m) => m.mountPoint === target && m.fsType.startsWith('fuse'));
  const last = found[found.length - 1];
  return last === undefined ? undefined : last.major * 2 ** 20 + last.minor;
}

/**
 * Aborts the FUSE connection mounted at dir and lazily unmounts it. Needs
 * root (or the mount's owner for the abort). Resolves true when a FUSE mount
 * was found there, false when none was.
 */
export async function freeWedgedMount(dir: string): Promise<boolean> {
  const target = resolve(dir);
  const connection = await findFuseConnection(target);
  if (connection === undefined) return false;
  const mounts = await readMountinfo();
  if (!mounts.some((m) => m.mountPoint === CONNECTIONS && m.fsType === 'fusectl')) {
    await run('mount', ['-t', 'fusectl', 'none', CONNECTIONS]);
  }
  try {
    await writeFile(`${CONNECTIONS}/${connection}/abort`, '1');
  } catch (err) {
    // The connection can vanish between the lookup and the write when the
    // server exits meanwhile; the lazy unmount below is still wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await run('umount', ['-l', target]);
  return true;
}
