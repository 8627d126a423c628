// Where binding.gyp finds BLAKE3's C implementation: Debian ships the
// official sources in librust-blake3-dev (scripts/setup.sh installs it), under
// /usr/share/cargo/registry/blake3-VERSION/c. Prints, for `node-gyp`'s
// command expansion, one item a line:
//   sources   the C and assembly files to compile (x86-64: with the SSE2,
//             SSE4.1, AVX2 and AVX-512 kernels, picked at run time)
//   include   the directory of blake3.h
//   defines   BAZIL_HAVE_BLAKE3, and on other CPUs the switches to the
//             portable code
// Without the package every list is empty and the ingest addon is built
// without BLAKE3: hash-wasm's runs instead (src/cas/chunk-keys.ts).

import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const REGISTRY = process.env['BAZIL_BLAKE3_REGISTRY'] ?? '/usr/share/cargo/registry';

function sourceDir() {
  let names;
  try {
    names = readdirSync(REGISTRY).filter((n) => /^blake3-\d+\.\d+\.\d+$/.test(n));
  } catch {
    return null;
  }
  const version = (n) => n.slice('blake3-'.length).split('.').map(Number);
  names.sort((a, b) => {
    const [x, y] = [version(a), version(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
  for (const name of names.reverse()) {
    const dir = join(REGISTRY, name, 'c');
    if (existsSync(join(dir, 'blake3.h')) && existsSync(join(dir, 'blake3_dispatch.c'))) return dir;
  }
  return null;
}

const dir = sourceDir();
const x64 = process.arch === 'x64';
const what = process.argv[2];
const out = [];
if (dir !== null) {
  if (what === 'sources') {
    // Relative to binding.gyp (gyp's working directory): gyp's make files place each object by its source's relative path.
    const files = ['blake3.c', 'blake3_dispatch.c', 'blake3_portable.c'];
    if (x64) files.push(...['sse2', 'sse41', 'avx2', 'avx512'].map((k) => `blake3_${k}_x86-64_unix.S`));
    out.push(...files.map((f) => relative(process.cwd(), join(dir, f))));
  } else if (what === 'include') {
    out.push(dir);
  } else if (what === 'defines') {
    out.push('BAZIL_HAVE_BLAKE3');
    if (!x64) out.push('BLAKE3_NO_SSE2', 'BLAKE3_NO_SSE41', 'BLAKE3_NO_AVX2', 'BLAKE3_NO_AVX512');
  } else {
    process.stderr.write('usage: blake3-sources.mjs sources|include|defines\n');
    process.exit(2);
  }
}
process.stdout.write(out.map((l) => `${l}\n`).join(''));
