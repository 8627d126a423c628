// The native addon against the real file system: hole punching must free
// blocks and zero exactly the range asked for, and maps must show the file.
//
// CI builds the addon, so a missing build fails here instead of skipping:
// a skipped suite would hide that production runs without hole punching.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadNative, type NativeBindings } from '../../arena/native.js';

const MiB = 1024 * 1024;

const loaded = loadNative();
let dir: string;

/** The bindings; every test fails, rather than skips, when they are missing. */
function addon(): NativeBindings {
  assert.ok(
    loaded !== null,
    'the native addon did not load: build it with `npm run build:native` (and unset BAZIL_NO_NATIVE)',
  );
  return loaded;
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bazil-native-'));
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `content` to a new file, flushed so st_blocks counts its blocks. */
function writeFile(name: string, content: Uint8Array): string {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'wx');
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

function withFd<T>(file: string, flags: string, fn: (fd: number) => T): T {
  const fd = fs.openSync(file, flags);
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A file descriptor number that is certainly not open. */
function closedFd(): number {
  const fd = fs.openSync(path.join(dir, 'closed'), 'w');
  fs.closeSync(fd);
  return fd;
}

describe('loadNative', () => {
  it('loads the addon, and the same bindings every call', () => {
    const native = addon();
    assert.equal(loadNative(), native);
    assert.equal(typeof native.punchHole, 'function');
    assert.equal(typeof native.mapFile, 'function');
  });

  it('returns null while BAZIL_NO_NATIVE=1', () => {
    const native = addon();
    const saved = process.env['BAZIL_NO_NATIVE'];
    process.env['BAZIL_NO_NATIVE'] = '1';
    try {
      assert.equal(loadNative(), null);
    } finally {
      if (saved === undefined) delete process.env['BAZIL_NO_NATIVE'];
      else process.env['BAZIL_NO_NATIVE'] = saved;
    }
    assert.equal(loadNative(), native);
  });
});

describe('punchHole', () => {
  it('frees the blocks of an aligned range and zeroes it, keeping size and the rest', () => {
    const native = addon();
    const content = Buffer.alloc(4 * MiB, 0xa5);
    const file = writeFile('aligned', content);
    const blocksBefore = fs.statSync(file).blocks;

    withFd(file, 'r+', (fd) => {
      native.punchHole(fd, 1 * MiB, 2 * MiB);
      fs.fsyncSync(fd);
    });

    const st = fs.statSync(file);
    assert.equal(st.size, 4 * MiB);
    // st_blocks counts 512-byte units; 2 MiB of whole blocks were freed.
    assert.ok(
      st.blocks <= blocksBefore - (2 * MiB) / 512,
      `st_blocks went from ${blocksBefore} to ${st.blocks}`,
    );
    const expected = Buffer.from(content);
    expected.fill(0, 1 * MiB, 3 * MiB);
    assert.ok(fs.readFileSync(file).equals(expected));
  });

  it('zeroes exactly an unaligned range', () => {
    const native = addon();
    const content = randomBytes(64 * 1024);
    // Random bytes may contain zeros; make every byte non-zero so a stray
    // zero outside the range cannot pass for an intact byte.
    for (let i = 0; i < content.length; i++) content[i] = content[i]! | 1;
    const file = writeFile('unaligned', content);
    const start = 4093;
    const length = 3 * 4096 + 7;

    withFd(file, 'r+', (fd) => native.punchHole(fd, start, length));

    const expected = Buffer.from(content);
    expected.fill(0, start, start + length);
    const actual = fs.readFileSync(file);
    assert.equal(actual.length, content.length);
    assert.ok(actual.subarray(0, start).equals(expected.subarray(0, start)));
    assert.ok(actual.subarray(start, start + length).every((b) => b === 0));
    assert.equal(actual[start - 1], content[start - 1]);
    assert.equal(actual[start + length], content[start + length]);
    assert.ok(actual.equals(expected));
  });

  it('does nothing for a zero length', () => {
    const native = addon();
    const content = Buffer.alloc(8192, 1);
    const file = writeFile('zero-length', content);
    withFd(file, 'r+', (fd) => native.punchHole(fd, 100, 0));
    assert.ok(fs.readFileSync(file).equals(content));
  });

  it('throws EBADF for a closed descriptor', () => {
    const native = addon();
    assert.throws(() => native.punchHole(closedFd(), 0, 4096), {
      code: 'EBADF',
      errno: -os.constants.errno.EBADF,
      syscall: 'fallocate',
    });
  });

  it('throws EBADF for a descriptor opened read-only', () => {
    const native = addon();
    const file = writeFile('read-only', Buffer.alloc(4096, 1));
    withFd(file, 'r', (fd) => {
      assert.throws(() => native.punchHole(fd, 0, 4096), { code: 'EBADF' });
    });
  });

  it('rejects arguments that are not non-negative integers', () => {
    const native = addon();
    const file = writeFile('bad-args', Buffer.alloc(4096, 1));
    withFd(file, 'r+', (fd) => {
      assert.throws(() => native.punchHole(fd, -1, 4096), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
      });
      assert.throws(() => native.punchHole(fd, 0, -4096), RangeError);
      assert.throws(() => native.punchHole(fd, 0.5, 4096), RangeError);
      assert.throws(() => native.punchHole(fd, Number.NaN, 4096), RangeError);
      assert.throws(() => native.punchHole(fd, 0, Number.POSITIVE_INFINITY), RangeError);
      assert.throws(() => native.punchHole(fd, 2 ** 53, 4096), RangeError);
      assert.throws(() => native.punchHole(-1, 0, 4096), RangeError);
      assert.throws(() => native.punchHole(fd, '0' as unknown as number, 4096), {
        name: 'TypeError',
        code: 'ERR_INVALID_ARG_TYPE',
      });
      assert.throws(
        () => (native.punchHole as (...args: unknown[]) => void)(fd, 0),
        TypeError,
      );
    });
    assert.ok(fs.readFileSync(path.join(dir, 'bad-args')).every((b) => b === 1));
  });
});

describe('mapFile', () => {
  it('maps the bytes of the file', () => {
    const native = addon();
    // Not a multiple of the page size, so the last page is partly past EOF.
    const content = randomBytes(100_000 + 123);
    const file = writeFile('mapped', content);

    const whole = withFd(file, 'r', (fd) => native.mapFile(fd, content.length));
    assert.ok(whole instanceof ArrayBuffer);
    assert.equal(whole.byteLength, content.length);
    // The descriptor is closed by now; the map stays valid.
    assert.ok(Buffer.from(whole).equals(content));

    const prefix = withFd(file, 'r', (fd) => native.mapFile(fd, 5000));
    assert.ok(Buffer.from(prefix).equals(content.subarray(0, 5000)));
  });

  it('shows a hole punched after mapping as zeros', () => {
    const native = addon();
    const content = Buffer.alloc(64 * 1024, 0x5a);
    const file = writeFile('mapped-punched', content);
    withFd(file, 'r+', (fd) => {
      const view = new Uint8Array(native.mapFile(fd, content.length));
      native.punchHole(fd, 8192, 4096);
      assert.ok(view.subarray(8192, 12288).every((b) => b === 0));
      assert.equal(view[8191], 0x5a);
      assert.equal(view[12288], 0x5a);
    });
  });

  it('returns an empty buffer for length 0', () => {
    const native = addon();
    const file = writeFile('empty', new Uint8Array(0));
    const empty = withFd(file, 'r', (fd) => native.mapFile(fd, 0));
    assert.ok(empty instanceof ArrayBuffer);
    assert.equal(empty.byteLength, 0);
  });

  it('refuses a length past the end of the file', () => {
    const native = addon();
    const file = writeFile('short', Buffer.alloc(4096, 1));
    withFd(file, 'r', (fd) => {
      assert.throws(() => native.mapFile(fd, 4097), {
        name: 'RangeError',
        code: 'ERR_OUT_OF_RANGE',
      });
    });
  });

  it('throws EBADF for a closed descriptor', () => {
    const native = addon();
    assert.throws(() => native.mapFile(closedFd(), 4096), {
      code: 'EBADF',
      errno: -os.constants.errno.EBADF,
    });
  });

  it('throws EACCES for a descriptor opened write-only', () => {
    const native = addon();
    const file = writeFile('write-only', Buffer.alloc(4096, 1));
    withFd(file, 'a', (fd) => {
      assert.throws(() => native.mapFile(fd, 4096), { code: 'EACCES', syscall: 'mmap' });
    });
  });

  it('rejects a negative or fractional length', () => {
    const native = addon();
    const file = writeFile('bad-length', Buffer.alloc(4096, 1));
    withFd(file, 'r', (fd) => {
      assert.throws(() => native.mapFile(fd, -1), RangeError);
      assert.throws(() => native.mapFile(fd, 1.5), RangeError);
    });
  });
});
