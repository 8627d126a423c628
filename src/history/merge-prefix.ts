// Whether a checkpoint still describes a prefix of the log's merge order.
// A checkpoint covers the first `count` events of the merge order as the
// log stood when it was taken; an event that arrives later from another
// writer and sorts before its last event shifts that prefix, and the
// checkpoint no longer describes any state of the log. Used by History
// (stale checkpoints are dropped) and by the live projection's rewind
// (only a checkpoint that is still a prefix can be rewound to).

import { compareCausal } from '../log/causal-merge.js';
import type { LogStore } from '../log/stream.js';
import type { VersionVector } from '../log/version-vector.js';
import type { Position } from '../projection/schema.js';

export interface PrefixClaim {
  count: bigint;
  vector: VersionVector;
  /** The last event it covers. */
  position: Position;
}

/** Whether the claim's events are still exactly the first `count` of the merge order of `log`. */
export function isMergePrefix(log: LogStore, claim: PrefixClaim): boolean {
  const held = log.versionVector();
  if (!claim.vector.isCoveredBy(held)) return false;
  if (claim.vector.pairs().reduce((sum, [, seq]) => sum + seq, 0n) !== claim.count) return false;
  const lastIt = log.read(claim.position.writer, claim.position.seq);
  const last = lastIt.next();
  lastIt.return(undefined);
  if (last.done || last.value.seq !== claim.position.seq || last.value.hlc !== claim.position.hlc) return false;
  for (const [writer] of held.pairs()) {
    const nextIt = log.read(writer, claim.vector.get(writer) + 1n);
    const next = nextIt.next();
    nextIt.return(undefined);
    if (!next.done && compareCausal(next.value, claim.position) < 0) return false;
  }
  return true;
}
