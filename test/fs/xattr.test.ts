import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BazilError, ErrorCodes } from '../../errors/index.js';
import { getXattr, listXattrs, removeXattr, setXattr, xattrsAvailable } from '../../src/fs/xattr.js';

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-xattr-test-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function isCode(code: string, errno?: string): (err: unknown) => boolean {
  return (err: unknown) => err instanceof BazilError && err.code === code && (errno === undefined || err.data['errno'] === errno);
}

test('the xattr addon is built', () => {
  assert.ok(xattrsAvailable(), 'build/Release/bazil_xattr.node is missing: npm run build:native');
});

test('set, get, list and remove on a temp file', async () => {
  await withTemp(async (dir) => {
    const file = join(dir, 'f');
    await writeFile(file, 'content');
    assert.deepEqual(listXattrs(file).filter((n) => n.startsWith('user.')), []);
    setXattr(file, 'user.one', Buffer.from('first'));
    setXattr(file, 'user.two', new Uint8Array([1, 2, 3]));
    assert.deepEqual(listXattrs(file).filter((n) => n.startsWith('user.')).sort(), ['user.one', 'user.two']);
    assert.equal(getXattr(file, 'user.one').toString(), 'first');
    assert.deepEqual([...getXattr(file, 'user.two')], [1, 2, 3]);
    // Replacing a value, including with a longer one.
    setXattr(file, 'user.one', Buffer.alloc(2000, 0x61));
    assert.ok(getXattr(file, 'user.one').equals(Buffer.alloc(2000, 0x61)));
    removeXattr(file, 'user.one');
    assert.deepEqual(listXattrs(file).filter((n) => n.startsWith('user.')), ['user.two']);
  });
});

test('a missing attribute is BAZIL_NOT_FOUND (ENODATA); a missing path BAZIL_NOT_FOUND', async () => {
  await withTemp(async (dir) => {
    const file = join(dir, 'f');
    await writeFile(file, '');
    assert.throws(() => getXattr(file, 'user.nope'), isCode(ErrorCodes.NOT_FOUND, 'ENODATA'));
    assert.throws(() => removeXattr(file, 'user.nope'), isCode(ErrorCodes.NOT_FOUND, 'ENODATA'));
    assert.throws(() => listXattrs(join(dir, 'missing')), isCode(ErrorCodes.NOT_FOUND));
    assert.throws(() => getXattr(join(dir, 'missing'), 'user.a'), isCode(ErrorCodes.NOT_FOUND));
  });
});

test('binary values with NUL bytes and empty values round-trip', async () => {
  await withTemp(async (dir) => {
    const file = join(dir, 'f');
    await writeFile(file, '');
    const binary = Buffer.from([0, 0xff, 0, 1, 0, 0, 0x80, 0]);
    setXattr(file, 'user.bin', binary);
    setXattr(file, 'user.empty', new Uint8Array(0));
    assert.ok(getXattr(file, 'user.bin').equals(binary));
    assert.equal(getXattr(file, 'user.empty').length, 0);
    assert.ok(Buffer.isBuffer(getXattr(file, 'user.empty')));
  });
});

test('an unknown namespace is a clear error; bad arguments are BAZIL_BAD_ARGUMENT', async () => {
  await withTemp(async (dir) => {
    const file = join(dir, 'f');
    await writeFile(file, '');
    assert.throws(() => setXattr(file, 'nonamespace', Buffer.from('x')), (err: unknown) =>
      err instanceof BazilError && err.code === ErrorCodes.IO && err.data['os'] === 'EOPNOTSUPP' && /does not support extended attributes/.test(err.message));
    assert.throws(() => getXattr(file, 'user.a\0b'), isCode(ErrorCodes.BAD_ARGUMENT));
    assert.throws(() => setXattr(file, 'user.a', 'text' as unknown as Uint8Array), isCode(ErrorCodes.BAD_ARGUMENT));
  });
});

test('symlinks are not followed', async () => {
  await withTemp(async (dir) => {
    const file = join(dir, 'f');
    const link = join(dir, 'l');
    await writeFile(file, '');
    await symlink('f', link);
    setXattr(file, 'user.target', Buffer.from('t'));
    assert.deepEqual(listXattrs(link).filter((n) => n.startsWith('user.')), []);
    assert.throws(() => getXattr(link, 'user.target'), isCode(ErrorCodes.NOT_FOUND, 'ENODATA'));
    // Linux refuses user.* on symlinks themselves.
    assert.throws(() => setXattr(link, 'user.x', Buffer.from('x')), isCode(ErrorCodes.IO));
  });
});
