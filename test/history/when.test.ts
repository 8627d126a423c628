import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBazilError, ErrorCodes } from '../../errors/index.js';
import { checkSnapshotName, parseWhen } from '../../src/history/when.js';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);

test('positions, times, snapshot names and now parse to their kinds', () => {
  assert.deepEqual(parseWhen('@1234', NOW), { kind: 'position', count: 1234n });
  assert.deepEqual(parseWhen(' now ', NOW), { kind: 'now' });
  assert.deepEqual(parseWhen('release-1', NOW), { kind: 'snapshot', name: 'release-1' });
  assert.deepEqual(parseWhen('snap:été 2026', NOW), { kind: 'snapshot', name: 'été 2026' });
  const ms = (w: string): number => {
    const p = parseWhen(w, NOW);
    assert.equal(p.kind, 'time', w);
    return p.kind === 'time' ? p.ms : NaN;
  };
  assert.equal(ms('3h ago'), NOW - 3 * 3_600_000);
  assert.equal(ms('2 days ago'), NOW - 2 * 86_400_000);
  assert.equal(ms('90 s ago'), NOW - 90_000);
  assert.equal(ms('1 week ago'), NOW - 604_800_000);
  assert.equal(ms('yesterday'), NOW - 86_400_000);
  assert.equal(ms('2026-11-20T14:00:00Z'), Date.UTC(2026, 10, 20, 14));
  assert.equal(ms('2026-11-20T14:00:00.25+01:00'), Date.UTC(2026, 10, 20, 13, 0, 0, 250));
  assert.equal(ms('2026-11-20 14:00'), new Date(2026, 10, 20, 14, 0).getTime(), 'no zone: local time');
  assert.equal(ms('2026-11-20'), new Date(2026, 10, 20).getTime());
  assert.equal(ms('2024-02-29 23:59:59Z'), Date.UTC(2024, 1, 29, 23, 59, 59));
});

test('malformed points are BAD_ARGUMENT, never read as snapshot names', () => {
  for (const bad of ['', '   ', '@', '@-1', '@1.5', '@abc', '2026-13-01', '2026-02-30', '2025-02-29', '2026-11-20 24:00', '2026-11-20 14:60',
    '2026-11-20T14:00+25:00', '3 fortnights ago', '3h', '12', '1e3', '2026/11/20', 'ago ago', 'a/b', 'x\0y']) {
    assert.throws(() => parseWhen(bad, NOW), (err: unknown) => isBazilError(err, ErrorCodes.BAD_ARGUMENT), JSON.stringify(bad));
  }
  assert.throws(() => parseWhen(`snap:${'n'.repeat(256)}`, NOW), (err: unknown) => isBazilError(err, ErrorCodes.NAME_TOO_LONG));
});

test('snapshot names that could be read as another point are refused', () => {
  for (const name of ['3h', '2026-11-20', '@5', 'now', 'Yesterday', 'a:b', 'x ago', '.', '..', 'a/b', '']) {
    assert.throws(() => checkSnapshotName(name), (err: unknown) => isBazilError(err, ErrorCodes.BAD_ARGUMENT), JSON.stringify(name));
  }
  assert.equal(checkSnapshotName('before-upgrade'), 'before-upgrade');
});
