// The public surface of the event log (docs/log.md).

export { LogStore, LOG_KIND, EVENT_RECORD_TYPE, DEFAULT_MAX_DRIFT_MS, type LogStoreOptions, type IncomingCheck, type IngestResult, type LogProblem } from './stream.js';
export {
  encodeEvent, parseEnvelope, decodeEnvelope, openBody, eventId, EVENT_VERSION, MAX_EVENT_BYTES, ZERO_ID,
  type EventHeader, type Envelope, type LogEvent, type EventDraft,
} from './codec.js';
export * from './event.js';
export { checkText, textProblem, NAME_MAX_BYTES, SYMLINK_TARGET_MAX_BYTES, type TextRule, type TextProblem } from './names.js';
export { now, receive, checkDrift, packHlc, hlcMs, hlcCounter, hlcToNanoseconds, MAX_HLC, MAX_HLC_MS, type Hlc } from './hlc.js';
export { VersionVector, type VectorOrder } from './version-vector.js';
export { signerFromSeed, generateSigner, verifySignature, type Signer } from './signing.js';
export { compareCausal, mergeCausal, type CausallyOrdered } from './causal-merge.js';
