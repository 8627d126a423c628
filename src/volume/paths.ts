// Volume paths: absolute, '/'-separated, UTF-8 names. A path is checked as a
// whole before anything is looked up, so a bad path fails the same way
// whatever the tree holds, with a stable code and an errno the FUSE layer
// can return as is.

import { BazilError, ErrorCodes } from '../../errors/index.js';
import { textProblem } from '../log/names.js';

/** PATH_MAX on Linux, in bytes including the terminating NUL. */
export const PATH_MAX_BYTES = 4096;

/** The names along an absolute volume path; [] for the root. */
export function splitPath(path: string): string[] {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, 'is not an absolute volume path (it must start with /)');
  }
  if (path.includes('\0')) throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, 'contains a NUL character');
  if (Buffer.byteLength(path, 'utf8') >= PATH_MAX_BYTES) {
    throw pathError(ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG', path, `is ${PATH_MAX_BYTES} bytes or longer`);
  }
  if (path === '/') return [];
  // One trailing slash is what shells add to directories; anything else empty is a mistake.
  const names = (path.endsWith('/') ? path.slice(1, -1) : path.slice(1)).split('/');
  for (const name of names) {
    if (name === '') throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, 'has an empty component (//)');
    if (name === '.' || name === '..') throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, `has a '${name}' component; volume paths are canonical`);
    const p = textProblem('name', name);
    if (p !== null) {
      throw p.tooLong
        ? pathError(ErrorCodes.NAME_TOO_LONG, 'ENAMETOOLONG', path, `has a name that ${p.reason}`)
        : pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, `has a name that ${p.reason}`);
    }
  }
  return names;
}

/** The parent's names and the last name of a path other than the root. */
export function splitParent(path: string): { parent: string[]; name: string } {
  const names = splitPath(path);
  const name = names.pop();
  if (name === undefined) throw pathError(ErrorCodes.BAD_ARGUMENT, 'EINVAL', path, 'is the root, which this operation cannot take');
  return { parent: names, name };
}

export function joinPath(names: readonly string[]): string {
  return `/${names.join('/')}`;
}

/** A BazilError about a volume path, with the errno a POSIX front end should return. */
export function pathError(code: (typeof ErrorCodes)[keyof typeof ErrorCodes], errno: string, path: string, why: string): BazilError {
  return new BazilError(code, `${JSON.stringify(path)} ${why}`, { path, errno });
}
