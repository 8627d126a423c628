// What the mount writes to the daemon's log about an unexpected error: the
// log is a file of the home, which must hold no plaintext name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeWithoutNames } from '../../src/fuse/ops.js';
import { BazilError, ErrorCodes } from '../../errors/index.js';

test('an unexpected error is described by kind, code and frames, never by its message', () => {
  const secretName = 'quarterly-salaries-ÄÖ.xlsx';
  const plain = new Error(`cannot read /docs/${secretName}`);
  const described = describeWithoutNames(plain);
  assert.ok(!described.includes(secretName), described);
  assert.match(described, /^Error\n {4}at /);

  const coded = new BazilError(ErrorCodes.IO, `write of ${secretName} failed`, { path: `/docs/${secretName}` });
  const codedText = describeWithoutNames(coded);
  assert.ok(!codedText.includes(secretName), codedText);
  assert.ok(codedText.includes(ErrorCodes.IO), codedText);

  assert.equal(describeWithoutNames(`/docs/${secretName}`), 'a non-Error value was thrown');
});
