import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, isBazilError } from '../../errors/index.js';
import { deriveVolumeKeys } from '../../src/crypto/volume-keys.js';
import { initHome, openHome, type Home } from '../../src/home/home.js';
import { VOLUME_INDEX_FILE } from '../../src/home/volume-index.js';
import { contentFormatOf, createVolume, listVolumes, openVolumeByName, SECRET_FILE, VOLUME_FILE } from '../../src/home/volumes.js';
import { chunkKeyer, chunkKeyOf } from '../../src/cas/chunk-keys.js';
import { Volume } from '../../src/volume/volume.js';
import { openBody } from '../../src/log/codec.js';
import { withHomeDir } from './helpers.js';

const code = (c: string) => (err: unknown) => isBazilError(err) && err.code === c;

async function withHome<T>(fn: (home: Home, dir: string) => Promise<T>): Promise<T> {
  return withHomeDir(async (dir) => {
    const { home } = await initHome(dir);
    try {
      return await fn(home, dir);
    } finally {
      await home.close();
    }
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

test('create, list and reopen a volume by name, across home opens', async () => {
  await withHomeDir(async (dir) => {
    const { home } = await initHome(dir);
    const created = new Date('2026-03-04T05:06:07.000Z');
    const photos = await createVolume(home, 'photos', { now: created });
    const docs = await createVolume(home, 'docs');
    assert.match(photos.id, /^[0-9a-f]{64}$/);
    assert.notEqual(photos.id, docs.id);
    assert.equal(photos.created, created.toISOString());
    await home.close();

    const again = await openHome(dir);
    try {
      const list = await listVolumes(again);
      assert.deepEqual(list, [
        { ...docs, events: 1 },
        { ...photos, events: 1 },
      ]);
      const v = await openVolumeByName(again, 'photos');
      try {
        assert.equal(v.id.toString('hex'), photos.id);
        assert.equal(v.dir, join(dir, 'volumes', photos.id));
        assert.equal(v.log.versionVector().get(again.peerId), 1n);
        // The layers above append through the log; a second event lands after the first.
        v.log.append({ type: 'mkdir', parent: v.log.read(again.peerId).next().value!.id, name: 'a', mode: 0o755, uid: 0, gid: 0 }, { wallMs: Date.now() });
        await v.log.sync();
        // Listing while a volume is open counts through its open arenas.
        assert.equal((await listVolumes(again)).find((e) => e.name === 'photos')?.events, 2);
        await assert.rejects(openVolumeByName(again, 'photos'), code(ErrorCodes.LOCKED));
      } finally {
        await v.close();
      }
      assert.equal((await listVolumes(again)).find((e) => e.name === 'photos')?.events, 2);
    } finally {
      await again.close();
    }
  });
});

test('the create-volume event verifies and its body decrypts with the keys derived from the stored secret', async () => {
  await withHome(async (home, dir) => {
    const entry = await createVolume(home, 'work', { now: new Date('2026-05-06T07:08:09.000Z') });
    const secret = await readFile(join(dir, 'volumes', entry.id, SECRET_FILE));
    const keys = deriveVolumeKeys(secret, Buffer.from(entry.id, 'hex'));
    const v = await openVolumeByName(home, 'work');
    try {
      assert.deepEqual(v.log.verifyAll(), []);
      assert.ok(v.keys.eventKey.equals(keys.eventKey));
      const events = [...v.log.read(home.peerId)];
      assert.equal(events.length, 1);
      const event = openBody(events[0]!, keys.eventKey);
      assert.equal(event.body.type, 'create-volume');
      assert.equal(event.body.type === 'create-volume' && event.body.label, 'work');
      assert.ok(event.writer.equals(home.peerId));
      assert.ok(event.volume.equals(v.id));
      assert.equal(event.seq, 1n);
    } finally {
      await v.close();
    }
  });
});

test('a new volume names content format 2 in its create-volume event; one made as format 1 keeps HMAC chunk keys', async () => {
  await withHome(async (home, dir) => {
    const data = randomBytes(300_000);
    for (const [name, format] of [['new', 2], ['old', 1]] as const) {
      const entry = await createVolume(home, name, format === 2 ? {} : { contentFormat: format });
      const v = await openVolumeByName(home, name);
      try {
        const event = v.log.open([...v.log.read(home.peerId)][0]!);
        assert.equal(event.body.type === 'create-volume' && event.body.content, format);
        assert.equal(contentFormatOf(v.log), format);
      } finally {
        await v.close();
      }
      // Written through the volume, the first chunk's key is the format's PRF of its plaintext.
      const volume = await Volume.open(dir, name, { home, sealWorkers: 0 });
      try {
        await volume.writeFile('/f', data);
        const first = volume.sealedContent(await volume.stat('/f')).manifest!.entries[0]!;
        assert.equal(first.kind, 'chunk');
        const secret = deriveVolumeKeys(await readFile(join(dir, 'volumes', entry.id, SECRET_FILE)), Buffer.from(entry.id, 'hex')).chunkKey;
        const expected = chunkKeyOf(await chunkKeyer(format, secret), data.subarray(0, first.length));
        assert.ok(first.kind === 'chunk' && first.key.equals(expected), `format ${format}: the chunk's key`);
        assert.ok((await volume.readFile('/f')).equals(data));
      } finally {
        await volume.close();
      }
    }
  });
});

test('secret files are 0600, volume directories 0700, and volume.json records name, id and time', async () => {
  await withHome(async (home, dir) => {
    const entry = await createVolume(home, 'music');
    const vdir = join(dir, 'volumes', entry.id);
    assert.equal((await stat(join(vdir, SECRET_FILE))).mode & 0o777, 0o600);
    assert.equal((await stat(vdir)).mode & 0o777, 0o700);
    assert.equal((await readFile(join(vdir, SECRET_FILE))).length, 32);
    assert.deepEqual(JSON.parse(await readFile(join(vdir, VOLUME_FILE), 'utf8')), entry);
  });
});

test('nothing of the volume name appears in plaintext in the arenas', async () => {
  await withHome(async (home, dir) => {
    const name = 'Zebra-Quokka_Unmistakable.42';
    const entry = await createVolume(home, name);
    const files = await filesUnder(join(dir, 'volumes', entry.id, 'arenas'));
    assert.ok(files.length > 0);
    for (const needle of [name, 'Zebra', 'Quokka', 'Unmistakable']) {
      for (const f of files) {
        const bytes = await readFile(f);
        assert.equal(bytes.indexOf(Buffer.from(needle, 'utf8')), -1, `${needle} in ${f}`);
        assert.equal(bytes.indexOf(Buffer.from(needle, 'utf16le')), -1, `${needle} (UTF-16) in ${f}`);
      }
    }
  });
});

test('duplicate and invalid names are refused with stable codes, and nothing is left behind', async () => {
  await withHome(async (home, dir) => {
    await createVolume(home, 'a.b_c-1');
    await assert.rejects(createVolume(home, 'a.b_c-1'), code(ErrorCodes.ALREADY_EXISTS));
    for (const bad of ['', '.hidden', '.', '..', 'a/b', 'a b', 'é', 'x'.repeat(65), 'semi;colon', 'nul\0']) {
      await assert.rejects(createVolume(home, bad), code(ErrorCodes.BAD_ARGUMENT), JSON.stringify(bad));
    }
    await createVolume(home, 'x'.repeat(64));
    assert.equal((await readdir(join(dir, 'volumes'))).length, 2);
    assert.equal((await listVolumes(home)).length, 2);
    await assert.rejects(openVolumeByName(home, 'nope'), code(ErrorCodes.NOT_FOUND));
  });
});

test('a create interrupted after its event is durable is indexed; one interrupted before is removed', async () => {
  await withHome(async (home, dir) => {
    const kept = await createVolume(home, 'kept');
    // As if the process died before writing the index.
    await writeFile(join(dir, VOLUME_INDEX_FILE), JSON.stringify({ volumes: [] }));
    // As if it died before the create-volume event: a directory with a secret and no log.
    const torn = join(dir, 'volumes', 'ab'.repeat(32));
    await mkdir(torn);
    await writeFile(join(torn, SECRET_FILE), Buffer.alloc(32, 1));

    assert.deepEqual(await listVolumes(home), [{ ...kept, events: 1 }]);
    assert.deepEqual(await readdir(join(dir, 'volumes')), [kept.id]);
    const index = JSON.parse(await readFile(join(dir, VOLUME_INDEX_FILE), 'utf8')) as { volumes: unknown[] };
    assert.deepEqual(index.volumes, [kept]);
  });
});

test('an empty home lists no volumes; a corrupt index is reported, not ignored', async () => {
  await withHome(async (home, dir) => {
    assert.deepEqual(await listVolumes(home), []);
    await writeFile(join(dir, VOLUME_INDEX_FILE), '{"volumes": [{"name": 1}]}');
    await assert.rejects(listVolumes(home), code(ErrorCodes.CORRUPT_METADATA));
  });
});
