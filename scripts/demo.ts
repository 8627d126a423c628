// `npm run demo`: Bazil's main job on an embedded default. Today that is the
// storage engine every later layer stands on: content-addressed objects
// written into arenas, sealed and indexed by a minimal perfect hash, looked
// up, deleted by hole punching, compacted, verified, survived a reopen.
// Later issues grow this into volumes, mounts, history and sync.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openArenaSet } from '../migrations/index.js';
import { nodeFileSystem } from '../arena/node-fs.js';
import type { ArenaSet, ArenaSetStats } from '../arena/arena-set.js';

const OBJECTS = Number(process.env.BAZIL_DEMO_OBJECTS ?? 40_000);
const keep = process.argv.includes('--keep');
const dir = mkdtempSync(join(tmpdir(), 'bazil-demo-'));
const writer = createHash('sha256').update('bazil demo peer').digest();

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function step(title: string): void {
  process.stdout.write(`\n== ${title}\n`);
}

function show(stats: ArenaSetStats): void {
  console.log(`   arenas: ${stats.sealedArenas} sealed, ${stats.activeArenas} active; records: ${stats.liveRecords} live, ${stats.deadRecords} deleted`);
  console.log(`   files: ${mib(stats.fileBytes)}; on disk: ${mib(stats.diskBytes)}; locator: ${mib(stats.locatorBytes)} in memory`);
}

/** A small tree with the kinds of things a filesystem holds. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'sub', 'empty-dir'), { recursive: true });
  writeFileSync(join(root, 'todo.txt'), 'buy milk\n');
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'sub', 'photo.jpg'), randomBytes(600 * 1024));
  writeFileSync(join(root, 'sub', 'naïve café ☕.txt'), 'Unicode names too\n');
  symlinkSync('todo.txt', join(root, 'link-to-todo'));
}

function timed<T>(fn: () => T): [T, number] {
  const t = process.hrtime.bigint();
  const r = fn();
  return [r, Number(process.hrtime.bigint() - t) / 1e6];
}

async function main(): Promise<void> {
  console.log(`Bazil demo: the arena engine, in ${dir}`);
  let set: ArenaSet = await openArenaSet(dir, { fs: nodeFileSystem, writer, sealBytes: 8 * 1024 * 1024 });
  try {
    step(`write ${OBJECTS.toLocaleString()} content-addressed objects (key = SHA-256 of the bytes)`);
    const keys: Buffer[] = [];
    let bytes = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < OBJECTS; i++) {
      const body = randomBytes(256 + ((i * 7919) % 3840));
      const key = createHash('sha256').update(body).digest();
      set.append('content', 1, key, body);
      keys.push(key);
      bytes += body.length;
      if (i % 10_000 === 9_999) {
        await set.sync();
        process.stdout.write(`\r   ${(i + 1).toLocaleString()} objects, ${mib(bytes)} durable`);
      }
    }
    await set.sync();
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`\r   ${OBJECTS.toLocaleString()} objects, ${mib(bytes)} in ${secs.toFixed(2)} s (${(bytes / 1e6 / secs).toFixed(0)} MB/s, fsync every 10,000)`);

    step('seal: footer, minimal perfect hash index, fsync, rename to its identity');
    const sealed = await set.sealNow();
    console.log(`   sealed ${sealed.length} more arena(s); every arena is named by SHA-256 over its header and key table`);
    show(set.stats());

    step('look up every object, and as many that were never written');
    const absent = Array.from({ length: OBJECTS }, (_, i) => createHash('sha256').update(`absent ${i}`).digest());
    const [found, tFound] = timed(() => set.getMany(keys).filter((r) => r !== undefined).length);
    const [falsePositives, tAbsent] = timed(() => set.getMany(absent).filter((r) => r !== undefined).length);
    console.log(`   present: ${found.toLocaleString()}/${OBJECTS.toLocaleString()} found, checksums verified, ${((OBJECTS / tFound) * 1000).toFixed(0)} gets/s`);
    console.log(`   absent:  ${falsePositives} found (must be 0), ${((OBJECTS / tAbsent) * 1000).toFixed(0)} gets/s`);
    if (found !== OBJECTS || falsePositives !== 0) throw new Error('lookup mismatch');

    step('delete 70% of the objects by punching holes (space returns, identities stay)');
    const dead = keys.filter((_, i) => i % 10 < 7);
    const before = set.stats().diskBytes;
    const punched = await set.punch(dead);
    const after = set.stats().diskBytes;
    console.log(`   punched ${punched.punched.toLocaleString()} records in ${punched.arenas} arenas: on disk ${mib(before)} -> ${mib(after)}`);
    const problems = set.verify();
    console.log(`   verify: ${problems.length === 0 ? 'every live record checks out against its digest' : `${problems.length} problems`}`);

    step('compact arenas that are mostly dead');
    const compacted = await set.compact({ maxLiveness: 0.5 });
    console.log(`   copied ${compacted.copied.toLocaleString()} live records out of ${compacted.retired.length} arenas, then retired them together`);
    show(set.stats());

    step('reopen (recovery scan, locator rebuilt) and check every live object');
    await set.close();
    const [reopened, tOpen] = await (async (): Promise<[ArenaSet, number]> => {
      const t = process.hrtime.bigint();
      const s = await openArenaSet(dir, { fs: nodeFileSystem, writer });
      return [s, Number(process.hrtime.bigint() - t) / 1e6];
    })();
    set = reopened;
    const live = keys.filter((_, i) => i % 10 >= 7);
    const ok = set.getMany(live).every((r, i) => r !== undefined && createHash('sha256').update(r.payload).digest().equals(live[i]));
    console.log(`   reopened in ${tOpen.toFixed(0)} ms; ${live.length.toLocaleString()} live objects read back and hash to their keys: ${ok ? 'yes' : 'NO'}`);
    console.log(`   deleted objects read as deleted: ${dead.slice(0, 1000).every((k) => set.state(k) !== 'live') ? 'yes' : 'NO'}`);
    if (!ok || set.verify().length !== 0) throw new Error('verification failed after reopen');
    show(set.stats());

    step('a home and a volume, through the bazil command');
    const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
    const env = { ...process.env, BAZIL_HOME: join(dir, 'home') };
    const bazil = (...args: string[]): void => {
      console.log(`   $ bazil ${args.join(' ')}`);
      const r = spawnSync(process.execPath, [cli, ...args], { env, encoding: 'utf8' });
      for (const line of `${r.stdout}${r.stderr}`.trimEnd().split('\n')) console.log(`     ${line}`);
      if (r.status !== 0) throw new Error(`bazil ${args.join(' ')} exited with ${r.status}`);
    };
    bazil('init');
    bazil('volume', 'create', 'photos');
    bazil('volume', 'create', 'notes');
    bazil('volume', 'ls');

    step('import a directory, change it, import it again, export it, compare');
    const src = join(dir, 'tree');
    makeTree(src);
    bazil('import', src, 'notes:/tree');
    bazil('ls', '-l', 'notes:/tree');
    // A changed file and a new one: unchanged content is deduplicated on the second import.
    writeFileSync(join(src, 'todo.txt'), 'buy milk\nwrite the mount\n');
    writeFileSync(join(src, 'sub', 'big.bin'), Buffer.concat([randomBytes(2 << 20), Buffer.alloc(1 << 20)]));
    bazil('import', src, 'notes:/tree-v2');
    bazil('cat', 'notes:/tree-v2/todo.txt');
    const out = join(dir, 'exported');
    bazil('export', 'notes:/tree-v2', out);
    const diff = spawnSync('diff', ['-r', src, out], { encoding: 'utf8' });
    console.log(`   diff -r of the source and the export: ${diff.status === 0 ? 'identical' : `DIFFERENT\n${diff.stdout}`}`);
    if (diff.status !== 0) throw new Error('export differs from the source');
    bazil('rebuild', 'notes');
    bazil('fsck', 'notes');

    step('mount the volume (FUSE, in the home\'s daemon) and work in it with ordinary tools; copies, snapshots, past states');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    bazil('mount', 'notes', mnt);
    try {
      // This process does not serve the mount (the daemon does), so plain file calls are safe here.
      const shell = (script: string): void => {
        console.log(`   $ ${script}`);
        const r = spawnSync('sh', ['-c', script], { cwd: mnt, encoding: 'utf8' });
        for (const line of `${r.stdout}${r.stderr}`.trimEnd().split('\n')) if (line !== '') console.log(`     ${line}`);
        if (r.status !== 0) throw new Error(`${script} exited with ${r.status}`);
      };
      shell('ls tree-v2 && cat tree-v2/todo.txt');
      bazil('snapshot', 'create', 'notes', 'before-edit');
      shell('echo "ship it" >> tree-v2/todo.txt && mkdir drafts && echo "hello" > drafts/letter.txt && mv tree tree-old');
      bazil('mounts');
      // Other commands reach the volume through the daemon while it is mounted.
      bazil('log', 'notes', '--limit', '6');
      bazil('diff', 'notes', 'before-edit', 'now');
      bazil('show', 'notes:/tree-v2/todo.txt', '--at', 'before-edit');
      bazil('du', 'notes', '--exact', '--depth', '1');
      // A copy of a whole tree is one event, sharing every chunk.
      bazil('cp', '--reflink', 'notes:/tree-v2', 'notes:/tree-copy');
      shell('echo "only in the copy" >> tree-copy/todo.txt && cat tree-v2/todo.txt tree-copy/todo.txt');
      // Snapshots are directories under .snap: mkdir takes one, each is its state, read-only.
      shell('mkdir .snap/after-edit && ls .snap && cat .snap/before-edit/tree-v2/todo.txt');
      shell('touch .snap/before-edit/new-file 2>&1 || echo "(refused: a past state is read-only)"');
      const past = join(dir, 'mnt-past');
      mkdirSync(past);
      bazil('mount', 'notes', past, '--at', 'before-edit');
      try {
        shell(`ls ${past} && cat ${past}/tree-v2/todo.txt`);
      } finally {
        bazil('umount', past);
      }
    } finally {
      bazil('umount', mnt);
    }
    bazil('fsck', 'notes');
    console.log('\nDemo complete.');
  } finally {
    await set.close();
    if (keep) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
