// The volume issue's encryption acceptance, confidentiality half: no
// plaintext of imported files, file names or directory names appears in any
// file of the home (every file under it is scanned for long random markers
// put in contents, names, symlink targets, xattr names and values), and two
// volumes with different secrets do not dedup against each other.
//
// The scan covers every byte of every file: the arenas, the projection's
// LevelDB files (tables, logs, MANIFEST, LOG), the checkpoints that history
// commands write (BAZIL_CHECKPOINT_EVERY is small so several exist), format
// records and locks; and the names of the files themselves. Nothing is
// mounted: the daemon's files are not made.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { setXattr } from '../../src/fs/xattr.js';
import { framesOf } from '../lib/arena-frames.js';
import { SLOW, cliOk, diskUsage, filesUnder, namesUnder, newHome, volumeDir, withTemp } from '../lib/acceptance.js';
import { generateTree, marker, rng } from '../lib/gen-tree.js';

const MiB = 1024 * 1024;

interface Scan {
  home: string;
  markers: Array<{ what: string; text: string }>;
  /** Marker text → home-relative files holding it (in their bytes or their name). */
  found: Map<string, string[]>;
  checkpoints: number;
}

let dir = '';
let scan: Scan | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bazil-accept-plaintext-'));
  const seed = Number(process.env.BAZIL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  process.stderr.write(`# seed ${seed}\n`);
  const r = rng(seed);
  const src = join(dir, 'src');
  const generated = await generateTree(src, SLOW
    ? { seed, files: 2000, totalBytes: 200 * MiB, bigFiles: 0, bigBytes: 0, maxFileBytes: 16 * MiB }
    : { seed, files: 150, totalBytes: 8 * MiB, bigFiles: 0, bigBytes: 0, maxFileBytes: 2 * MiB });
  const markers: Scan['markers'] = [
    ...generated.contentMarkers.map((text) => ({ what: 'file content', text })),
    ...generated.nameMarkers.map((text) => ({ what: 'file or directory name', text })),
  ];
  // Text that compresses well and repeats, in small and chunk-sized files: no chunk may carry it in the clear.
  const dirName = marker(r, 'SECRETDIR');
  const fileName = marker(r, 'SECRETFILE');
  const textMarker = marker(r, 'SECRETTEXT');
  await mkdir(join(src, dirName));
  await writeFile(join(src, dirName, `${fileName}.txt`), `${textMarker}\n`.repeat(20_000));
  await writeFile(join(src, dirName, 'tiny'), textMarker);
  const targetMarker = marker(r, 'SECRETTARGET');
  await symlink(`../${targetMarker}/x`, join(src, dirName, 'link'));
  const xattrMarker = marker(r, 'SECRETXATTR');
  setXattr(join(src, dirName, 'tiny'), 'user.note', Buffer.from(xattrMarker));
  const xattrNameMarker = marker(r, 'SECRETXNAME');
  setXattr(join(src, dirName, `${fileName}.txt`), `user.${xattrNameMarker}`, Buffer.from('v'));
  markers.push(
    { what: 'directory name', text: dirName },
    { what: 'file name', text: fileName },
    { what: 'file content (repeated text)', text: textMarker },
    { what: 'symlink target', text: targetMarker },
    { what: 'xattr value', text: xattrMarker },
    { what: 'xattr name', text: xattrNameMarker },
  );

  // Checkpoints every few events, so the history commands below leave several.
  process.env.BAZIL_CHECKPOINT_EVERY = '16';
  const home = newHome(dir, 'v');
  cliOk(home, ['import', src, 'v:/t']);
  cliOk(home, ['snapshot', 'create', 'v', 'first']);
  cliOk(home, ['import', join(src, dirName), 'v:/again']);
  // Everything that writes under the home: fsck's scratch replay, a rebuild, an export, history views.
  cliOk(home, ['fsck', 'v']);
  cliOk(home, ['rebuild', 'v']);
  cliOk(home, ['export', 'v:/t', join(dir, 'out')]);
  cliOk(home, ['log', 'v', '-n', '5']);
  cliOk(home, ['show', 'v:/', '--at', '@20']);
  cliOk(home, ['diff', 'v', 'first']);
  cliOk(home, ['export', `v:/t/${dirName}`, join(dir, 'out-then'), '--at', 'first']);
  const checkpoints = (await filesUnder(home)).filter((f) => f.endsWith('.ckpt'));
  assert.ok(checkpoints.length >= 2, `history commands wrote checkpoints (${checkpoints.length})`);

  const found = new Map<string, string[]>();
  for (const file of await filesUnder(home)) {
    const bytes = Buffer.concat([await readFile(file), Buffer.from(`\n${relative(home, file)}`)]);
    for (const m of markers) {
      if (bytes.includes(m.text)) found.set(m.text, [...(found.get(m.text) ?? []), relative(home, file)]);
    }
  }
  scan = { home, markers, found, checkpoints: checkpoints.length };
});

after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

type Area = 'projection' | 'checkpoints' | 'other';

function areaOf(file: string): Area {
  const parts = file.split(sep);
  return parts.includes('projection') ? 'projection' : parts.includes('checkpoints') ? 'checkpoints' : 'other';
}

function leaks(area: Area): string[] {
  const s = scan!;
  const out: string[] = [];
  for (const m of s.markers) {
    const files = (s.found.get(m.text) ?? []).filter((f) => areaOf(f) === area);
    if (files.length > 0) out.push(`${m.what} ${m.text.slice(0, 16)}… in ${files.join(', ')}`);
  }
  return out;
}

test('no plaintext of contents, names, symlink targets or xattrs in the arenas and the other files of the home', () => {
  assert.ok(scan!.markers.length >= 10, 'markers were planted');
  assert.deepEqual(leaks('other'), []);
});

test('no plaintext in the projection (LevelDB tables, logs, MANIFEST)', () => {
  assert.deepEqual(leaks('projection'), []);
});

test('no plaintext in the checkpoints that history commands wrote', () => {
  assert.ok(scan!.checkpoints >= 2);
  assert.deepEqual(leaks('checkpoints'), []);
});

test('the scan would see a leak: the planted markers are in the source tree and come back from the volume', async () => {
  const s = scan!;
  // The exported copy holds names and contents in the clear; the same search there finds them.
  const out = await filesUnder(join(dir, 'out'));
  const names = (await namesUnder(join(dir, 'out'))).join('\n');
  const outText = Buffer.concat([Buffer.from(names), ...(await Promise.all(out.map((f) => readFile(f))))]);
  const readable = s.markers.filter((m) => m.what !== 'xattr value' && m.what !== 'xattr name' && m.what !== 'symlink target');
  const visible = readable.filter((m) => outText.includes(m.text));
  // The generated tree's odd nodes (fifos, unreadable modes) may hide a few; the planted ones must all show.
  assert.ok(visible.length >= readable.length * 0.9, `${visible.length} of ${readable.length} markers found in the export`);
  for (const what of ['directory name', 'file name', 'file content (repeated text)']) {
    assert.ok(visible.some((m) => m.what === what), `the ${what} is found in the export`);
  }
  // A sealed projection read with the volume's key gives the names back.
  const listing = cliOk(s.home, ['ls', `v:/t`]);
  assert.ok(s.markers.some((m) => listing.includes(m.text)));
});

test('two volumes with different secrets do not dedup against each other', async () => {
  await withTemp('accept-two-secrets', async (tmp) => {
    const size = SLOW ? 100 * MiB : 12 * MiB;
    const src = join(tmp, 'src');
    await mkdir(src);
    await writeFile(join(src, 'same.bin'), randomBytes(size));
    const home = newHome(tmp, 'one', 'two');
    const imp = (target: string): { newBytes: number; bytes: number } =>
      JSON.parse(cliOk(home, ['--json', 'import', src, target])) as { newBytes: number; bytes: number };

    const first = imp('one:/a');
    assert.ok(first.newBytes >= size, `the first import stores the file (${first.newBytes} new bytes)`);
    const usageBefore = diskUsage(home);
    // Control: within one volume the same file costs nothing new.
    assert.ok(imp('one:/b').newBytes < size * 0.01, 'same file, same volume: deduplicated');
    const other = imp('two:/a');
    assert.ok(other.newBytes >= size, `same file, another volume: full size stored (${other.newBytes} of ${size} new)`);
    assert.ok(diskUsage(home) - usageBefore >= size, 'the other volume takes the full size on disk');

    // No object id is shared: the ids derive from each volume's own convergence secret.
    const keys = async (volume: string): Promise<Set<string>> => {
      const arenas = join(volumeDir(home, volume), 'arenas');
      const out = new Set<string>();
      for (const f of (await readdir(arenas)).filter((n) => n.startsWith('content.'))) {
        for (const frame of framesOf(await readFile(join(arenas, f)))) out.add(frame.key.toString('hex'));
      }
      return out;
    };
    const a = await keys('one');
    const b = await keys('two');
    assert.ok(a.size > 0 && b.size > 0);
    assert.deepEqual([...a].filter((k) => b.has(k)), []);
  });
});
