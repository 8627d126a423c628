// The public surface of the filesystem projection (docs/projection.md).

export { ProjectionStore, Batch, type Attrs, type DirEntry } from './store.js';
export { Projector, DEFAULT_BATCH_EVENTS, type CatchUpResult } from './projector.js';
export { applyEvent, lostFoundId, LOST_FOUND_NAME, type FsTx, type Outcome } from './fs-state.js';
export { conflictName } from './conflict-name.js';
export { ProjectionCipher } from './cipher.js';
export { SealingCodec, PLAIN_CODEC, type RecordCodec } from './record-codec.js';
export type { InodeKind, Note, Position } from './schema.js';
