// Which command lines go to a running daemon, and how their local paths are
// made absolute first (src/cli/forward.ts), read from the real program.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planForward } from '../../src/cli/forward.js';
import { createProgram } from '../../src/cli/program.js';

const env = { BAZIL_HOME: '/homes/h' };

test('forward plan: local paths become absolute, volume paths do not', () => {
  const program = createProgram();
  assert.deepEqual(planForward(program, ['import', 'src/dir', 'v:/x'], '/work', env), { argv: ['import', '/work/src/dir', 'v:/x'], localPaths: ['/work/src/dir'], homeDir: '/homes/h' });
  assert.deepEqual(planForward(program, ['export', 'v', 'out', '--home', 'rel-home'], '/work', env), { argv: ['export', 'v', '/work/out', '--home', '/work/rel-home'], localPaths: ['/work/out', '/work/rel-home'], homeDir: '/work/rel-home' });
  assert.deepEqual(planForward(program, ['--json', 'ls', '-l', 'v:/a'], '/work', env), { argv: ['--json', 'ls', '-l', 'v:/a'], localPaths: [], homeDir: '/homes/h' });
  assert.deepEqual(planForward(program, ['stat', '--home=/abs', 'v:/a'], '/work', env), { argv: ['stat', '--home', '/abs', 'v:/a'], localPaths: ['/abs'], homeDir: '/abs' });
});

test('forward plan: daemon commands, help, version and bad command lines run locally', () => {
  const program = createProgram();
  for (const args of [[], ['mount', 'v', 'd'], ['umount', 'd'], ['mounts'], ['daemon', 'status'], ['init'], ['help'], ['ls', '--help'], ['--version'], ['volume']]) {
    assert.equal(planForward(program, args, '/work', env), undefined, args.join(' '));
  }
  // An unknown command is forwarded as it is, and the daemon's program reports it.
  assert.deepEqual(planForward(program, ['ls', 'v', 'extra'], '/w', env)?.argv, ['ls', 'v', 'extra']);
});
