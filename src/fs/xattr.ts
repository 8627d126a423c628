// Extended attributes of local paths, through the small native addon
// native/xattr.c (build/Release/bazil_xattr.node): Node's fs module has no
// xattr API. Symlinks are never followed (llistxattr, lgetxattr, lsetxattr,
// lremovexattr), so a symlink's own attributes are the ones read and set.
//
// Errors are BazilErrors: a missing path or attribute is BAZIL_NOT_FOUND
// (data.errno 'ENOENT' or 'ENODATA'), a file system or namespace without
// xattr support is BAZIL_IO with data.os 'EOPNOTSUPP' and a message that
// says so, anything else BAZIL_IO with the OS error as the cause.

import { createRequire } from 'node:module';
import { BazilError, ErrorCodes, ioError } from '../../errors/index.js';
import { findAddon } from '../../arena/native.js';

interface XattrBindings {
  list(path: string): string[];
  get(path: string, name: string): Buffer;
  set(path: string, name: string, value: Uint8Array): void;
  remove(path: string, name: string): void;
}


// undefined until the first load attempt; null once it found no usable addon.
let cached: XattrBindings | null | undefined;
let loadError: string | undefined;

/** Whether the xattr addon is built and loads. */
export function xattrsAvailable(): boolean {
  return bindings() !== null;
}

/** The names of `path`'s extended attributes that this process may see (symlinks not followed). */
export function listXattrs(path: string): string[] {
  return call('llistxattr', path, undefined, (b) => b.list(path));
}

/** The value of attribute `name` of `path`; BAZIL_NOT_FOUND (errno ENODATA) when it is not set. */
export function getXattr(path: string, name: string): Buffer {
  return call('lgetxattr', path, name, (b) => b.get(path, name));
}

/** Creates or replaces attribute `name` of `path`. */
export function setXattr(path: string, name: string, value: Uint8Array): void {
  call('lsetxattr', path, name, (b) => b.set(path, name, value));
}

/** Removes attribute `name` of `path`; BAZIL_NOT_FOUND (errno ENODATA) when it is not set. */
export function removeXattr(path: string, name: string): void {
  call('lremovexattr', path, name, (b) => b.remove(path, name));
}

function call<T>(op: string, path: string, name: string | undefined, fn: (b: XattrBindings) => T): T {
  const b = bindings();
  if (b === null) {
    throw new BazilError(ErrorCodes.NATIVE_UNAVAILABLE,
      `${op} ${path}: extended attributes need the native addon bazil_xattr, which ${loadError ?? 'is not built'} (run npm run build:native)`,
      { op, path });
  }
  try {
    return fn(b);
  } catch (err) {
    throw xattrError(op, path, name, err);
  }
}

function xattrError(op: string, path: string, name: string | undefined, cause: unknown): BazilError {
  const osCode = (cause as NodeJS.ErrnoException | undefined)?.code;
  const what = name === undefined ? '' : ` ${JSON.stringify(name)}`;
  if (osCode === 'ENODATA') {
    return new BazilError(ErrorCodes.NOT_FOUND, `${op} ${path}: no extended attribute${what}`, { op, path, name, errno: 'ENODATA' }, cause);
  }
  if (osCode === 'ENOTSUP' || osCode === 'EOPNOTSUPP') {
    return new BazilError(ErrorCodes.IO,
      `${op} ${path}: the file system does not support extended attributes${name === undefined ? '' : ` in the namespace of ${JSON.stringify(name)}`}`,
      { op, path, name, os: osCode }, cause);
  }
  if (cause instanceof TypeError) {
    return new BazilError(ErrorCodes.BAD_ARGUMENT, `${op} ${path}: ${cause.message}`, { op, path, name }, cause);
  }
  const err = ioError(op, path, cause);
  if (name !== undefined) err.data['name'] = name;
  return err;
}

function bindings(): XattrBindings | null {
  if (cached === undefined) cached = load();
  return cached;
}

function load(): XattrBindings | null {
  const path = findAddon('bazil_xattr.node');
  if (path === null) return null;
  try {
    const addon: unknown = createRequire(import.meta.url)(path);
    if (!isBindings(addon)) throw new Error('the module does not export list, get, set and remove (rebuild it: npm run build:native)');
    return addon;
  } catch (err) {
    loadError = `failed to load from ${path} (${err instanceof Error ? err.message : String(err)})`;
    return null;
  }
}

function isBindings(value: unknown): value is XattrBindings {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['list'] === 'function' && typeof v['get'] === 'function' &&
    typeof v['set'] === 'function' && typeof v['remove'] === 'function';
}
