import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// This file runs from dist/test/scripts/; the repository root is three levels up.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = join(root, 'scripts', 'lint-layers.mjs');

async function tree(t: { after: (fn: () => Promise<void>) => void }, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bazil-lint-layers-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

function lint(dir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [script, dir], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const clean = {
  'arena/good.ts': [
    "import { readFileSync } from 'node:fs';",
    "import path from 'path';",
    "import { ClassicLevel } from 'classic-level';",
    "import { BazilError } from '../errors/index.js';",
    "import { frame } from './format.js';",
    "export { sealed } from './sub/sealed.js';",
    "// import { x } from '../src/log/event.js'; (a comment is not an import)",
    "const text = \"import y from '../src/cas/chunk.js'\";",
    "const native = require('../../build/Release/bazil_native.node');",
    '',
  ].join('\n'),
  'arena/sub/sealed.ts': "import { frame } from '../format.js';\n",
  'errors/index.ts': "import { inspect } from 'node:util';\n",
  'src/log/event.ts': "import { BazilError } from '../../errors/index.js';\nimport { frame } from '../../arena/format.js';\n",
};

test('a tree that keeps the layering passes', async (t) => {
  const r = lint(await tree(t, clean));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
});

test('every form of import from arena/ into src/ or elsewhere is reported with file:line', async (t) => {
  const dir = await tree(t, {
    ...clean,
    'arena/bad.ts': [
      "import { BazilError } from '../errors/index.js';",
      "import { event } from '../src/log/event.js';",
      'import {',
      '  chunk,',
      "} from '../src/cas/chunk.js';",
      "export * from '../migrations/runner.js';",
      "const lazy = await import('../src/volume/volume.js');",
      "const cjs = require('../scripts/helper.js');",
      "import type { Foo } from '../test/fixtures.js';",
      "import self from 'bazil/arena';",
      '',
    ].join('\n'),
    'errors/codes.ts': "import { event } from '../src/log/event.js';\nimport { local } from './index.js';\n",
  });
  const r = lint(dir);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split(': ')[0]),
    ['arena/bad.ts:2', 'arena/bad.ts:5', 'arena/bad.ts:6', 'arena/bad.ts:7', 'arena/bad.ts:8', 'arena/bad.ts:9', 'arena/bad.ts:10', 'errors/codes.ts:1'],
  );
  assert.match(lines[0] ?? '', /'\.\.\/src\/log\/event\.js'.*arena\/ must not import from src\//);
  assert.match(lines[2] ?? '', /export \.\.\. from '\.\.\/migrations\/runner\.js' resolves to migrations\/runner\.js/);
  assert.match(lines[3] ?? '', /import\(\)/);
  assert.match(lines[4] ?? '', /require\(\)/);
  assert.match(lines[7] ?? '', /errors\/ must not import from src\//);
  assert.match(r.stderr, /8 layering violation/);
});

test('a missing root is a usage error', () => {
  const r = lint(join(tmpdir(), 'bazil-no-such-dir-for-lint'));
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not a directory/);
});
