// Bazil's own package.json, found by walking up from this module, so the
// lookup works from src/cli/ (tsx, tests) and from dist/src/cli/ alike.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  name: string;
  version: string;
  description: string;
}

let cached: PackageInfo | undefined;

export function packageInfo(): PackageInfo {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const found = readPackage(join(dir, 'package.json'));
    if (found !== null) {
      cached = found;
      return found;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`package.json of bazil not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

function readPackage(path: string): PackageInfo | null {
  let json: Partial<PackageInfo>;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as Partial<PackageInfo>;
  } catch {
    // Missing or unreadable: keep walking up.
    return null;
  }
  if (json.name !== 'bazil' || typeof json.version !== 'string') return null;
  return { name: json.name, version: json.version, description: json.description ?? '' };
}
