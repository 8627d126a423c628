import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isBazilError, ErrorCodes, type ErrorCode } from '../../errors/index.js';
import { decodeEnvelope, encodeEvent, eventId, openBody, parseEnvelope, MAX_EVENT_BYTES, ZERO_ID, type EventDraft } from '../../src/log/codec.js';
import { decodeCanonical, encodeCanonical, type DecodedValue, type EncodableValue } from '../../src/log/canonical-cbor.js';
import { packHlc } from '../../src/log/hlc.js';
import { VersionVector } from '../../src/log/version-vector.js';
import { ALICE, BOB, CAROL, EVENT_KEY, OTHER_KEY, VOLUME, arbBody, bytesOf, sampleBodies } from './helpers.js';

function draft(over: Partial<EventDraft> = {}): EventDraft {
  return {
    volume: VOLUME, seq: 3n, hlc: packHlc(1_700_000_000_000, 2), prev: bytesOf('prev'),
    deps: VersionVector.from([[BOB.writer, 7n], [CAROL.writer, 1n]]),
    body: { type: 'create', parent: bytesOf('root'), name: 'notes.txt', mode: 0o644, uid: 1000, gid: 1000 },
    ...over,
  };
}

/** Decodes every layer; the error code, or null when the event is fine. */
function codeOf(bytes: Uint8Array, key: Uint8Array = EVENT_KEY): ErrorCode | null {
  try {
    openBody(decodeEnvelope(bytes), key);
    return null;
  } catch (err) {
    if (!isBazilError(err)) throw err;
    return err.code;
  }
}

test('every event type round-trips through every layer', () => {
  for (const body of sampleBodies()) {
    const env = encodeEvent(draft({ body }), ALICE, EVENT_KEY);
    const back = decodeEnvelope(env.bytes);
    assert.deepEqual(back.writer, ALICE.writer);
    assert.equal(back.seq, 3n);
    assert.equal(back.hlc, packHlc(1_700_000_000_000, 2));
    assert.deepEqual(back.prev, bytesOf('prev'));
    assert.ok(back.deps.equals(draft().deps));
    assert.deepEqual(back.id, env.id);
    assert.deepEqual(back.id, eventId(back.signedPart));
    const ev = openBody(back, EVENT_KEY);
    assert.deepEqual(ev.body, body, body.type);
    assert.deepEqual(ev.id, env.id);
  }
});

test('encoding is deterministic: the same event gives the same bytes', () => {
  fc.assert(fc.property(arbBody(), fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (body, seq, hlc) => {
    const d = draft({ body, seq, hlc, prev: seq === 1n ? ZERO_ID : bytesOf('p') });
    const a = encodeEvent(d, ALICE, EVENT_KEY);
    const b = encodeEvent({ ...d, body: structuredClone(body) }, ALICE, EVENT_KEY);
    assert.deepEqual(a.bytes, b.bytes);
    const back = openBody(decodeEnvelope(a.bytes), EVENT_KEY);
    assert.deepEqual(back.body, body);
    assert.equal(back.seq, seq);
    assert.equal(back.hlc, hlc);
  }), { numRuns: 200 });
  // A different body, seq or key changes the sealed body and so the id.
  const ids = new Set([
    encodeEvent(draft(), ALICE, EVENT_KEY), encodeEvent(draft({ seq: 4n }), ALICE, EVENT_KEY),
    encodeEvent(draft(), ALICE, OTHER_KEY), encodeEvent(draft({ body: { type: 'pin', inode: bytesOf('x') } }), ALICE, EVENT_KEY),
  ].map((e) => e.id.toString('hex')));
  assert.equal(ids.size, 4);
});

test('the signed part has the documented layout', () => {
  const env = encodeEvent(draft(), ALICE, EVENT_KEY);
  const outer = decodeCanonical(env.bytes) as DecodedValue[];
  assert.equal(outer.length, 2);
  assert.deepEqual(outer[0], env.signedPart);
  assert.equal((outer[1] as Buffer).length, 64);
  const part = decodeCanonical(env.signedPart) as DecodedValue[];
  assert.equal(part.length, 8);
  assert.equal(part[0], 1);
  assert.deepEqual(part[1], VOLUME);
  assert.deepEqual(part[2], ALICE.writer);
  assert.equal(part[3], 3);
  assert.equal(part[4], packHlc(1_700_000_000_000, 2));
  assert.deepEqual(part[6], draft().deps.pairs().map(([w, s]) => [w, Number(s)]));
  assert.deepEqual(part[7], env.sealedBody);
});

test('flipping any byte of a stored event is caught with a stable code', () => {
  const allowed = new Set<ErrorCode>([ErrorCodes.CORRUPT_EVENT, ErrorCodes.BAD_SIGNATURE, ErrorCodes.UNSUPPORTED_FORMAT]);
  for (const body of [sampleBodies()[0], sampleBodies()[7]]) {
    const { bytes } = encodeEvent(draft({ body }), ALICE, EVENT_KEY);
    assert.equal(codeOf(bytes), null);
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const b = Buffer.from(bytes);
        b[i] ^= mask;
        const code = codeOf(b);
        assert.ok(code !== null && allowed.has(code), `byte ${i} ^ ${mask}: ${code}`);
      }
    }
  }
});

test('the wrong key, or a body moved to another event, fails to decrypt', () => {
  const env = encodeEvent(draft(), ALICE, EVENT_KEY);
  assert.equal(codeOf(env.bytes, OTHER_KEY), ErrorCodes.DECRYPT_FAILED);
  // A writer re-signing another event's sealed body under a new seq: the aad no longer matches.
  const moved = encodeCanonical([1, VOLUME, ALICE.writer, 4, env.hlc + 1n, env.id, env.deps.toCbor(), env.sealedBody]);
  const forged = encodeCanonical([moved, ALICE.sign(moved)]);
  assert.equal(codeOf(forged), ErrorCodes.DECRYPT_FAILED);
  assert.throws(() => openBody(env, Buffer.alloc(5)), (e) => isBazilError(e, ErrorCodes.BAD_ARGUMENT));
});

test('structural rules: version, sizes, prev of the first event, deps, signature by the named writer', () => {
  const env = encodeEvent(draft(), ALICE, EVENT_KEY);
  const fields: EncodableValue[] = [1, VOLUME, ALICE.writer, 3, env.hlc, env.prev, env.deps.toCbor(), env.sealedBody];
  const signed = (f: EncodableValue[], signer = ALICE): Buffer => {
    const part = encodeCanonical(f);
    return encodeCanonical([part, signer.sign(part)]);
  };
  const withField = (i: number, v: EncodableValue): Buffer => signed(fields.map((x, j) => (j === i ? v : x)));
  assert.equal(codeOf(signed(fields)), null);
  assert.equal(codeOf(withField(0, 2)), ErrorCodes.UNSUPPORTED_FORMAT);
  assert.equal(codeOf(withField(0, '1')), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(signed([...fields, 0])), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(signed(fields.slice(0, 7))), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(withField(1, VOLUME.subarray(1))), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(withField(3, 0)), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(withField(3, -3)), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(withField(4, 'soon')), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(withField(3, 1)), ErrorCodes.CORRUPT_EVENT); // seq 1 with a non-zero prev
  assert.equal(codeOf(withField(6, VersionVector.from([[ALICE.writer, 2n]]).toCbor())), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(withField(6, [[BOB.writer, 0]])), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(withField(7, Buffer.alloc(27))), ErrorCodes.CORRUPT_EVENT);
  // Alice's name, Bob's signature.
  assert.equal(codeOf(signed(fields, BOB)), ErrorCodes.BAD_SIGNATURE);
  const part = encodeCanonical(fields);
  assert.equal(codeOf(encodeCanonical([part, ALICE.sign(part), 0])), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(encodeCanonical([part, ALICE.sign(part).subarray(1)])), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(encodeCanonical({ part, sig: ALICE.sign(part) })), ErrorCodes.CORRUPT_EVENT);
  assert.equal(codeOf(Buffer.alloc(MAX_EVENT_BYTES + 1)), ErrorCodes.CORRUPT_EVENT);
  // parseEnvelope alone does not check the signature.
  assert.doesNotThrow(() => parseEnvelope(signed(fields, BOB)));
});

test('bad drafts are refused before signing', () => {
  const bad: [Partial<EventDraft>, ErrorCode][] = [
    [{ seq: 0n }, ErrorCodes.BAD_ARGUMENT],
    [{ seq: 1n }, ErrorCodes.BAD_ARGUMENT], // non-zero prev
    [{ prev: ZERO_ID }, ErrorCodes.BAD_ARGUMENT],
    [{ hlc: -1n }, ErrorCodes.BAD_ARGUMENT],
    [{ volume: Buffer.alloc(31) }, ErrorCodes.BAD_ARGUMENT],
    [{ deps: VersionVector.from([[ALICE.writer, 1n]]) }, ErrorCodes.BAD_ARGUMENT],
    [{ body: { type: 'set-content', inode: bytesOf('i'), size: 1, manifest: Buffer.alloc(512 * 1024 + 1) } }, ErrorCodes.BAD_ARGUMENT],
  ];
  for (const [over, code] of bad) {
    assert.throws(() => encodeEvent(draft(over), ALICE, EVENT_KEY), (e) => isBazilError(e, code), Object.keys(over).join());
  }
});

test('hostile input: random bytes, truncations and splices give stable codes, never a crash', () => {
  const allowed = new Set<ErrorCode>([ErrorCodes.CORRUPT_EVENT, ErrorCodes.BAD_SIGNATURE, ErrorCodes.UNSUPPORTED_FORMAT, ErrorCodes.DECRYPT_FAILED]);
  const valid = sampleBodies().slice(0, 6).map((body) => encodeEvent(draft({ body }), ALICE, EVENT_KEY).bytes);
  const check = (b: Uint8Array): void => {
    const code = codeOf(b);
    assert.ok(code === null || allowed.has(code), String(code));
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), check), { numRuns: 3000 });
  // Random bytes behind a plausible head (array of 2, byte string) reach deeper layers.
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => check(Buffer.concat([Buffer.from([0x82, 0x59, 0x01, 0x00]), tail]))), { numRuns: 2000 });
  for (const bytes of valid) {
    for (let n = 0; n < bytes.length; n++) assert.equal(codeOf(bytes.subarray(0, n)), ErrorCodes.CORRUPT_EVENT, `prefix ${n}`);
  }
  fc.assert(fc.property(fc.constantFrom(...valid), fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 16 }), (bytes, at, cut, insert) => {
    const i = at % bytes.length;
    const spliced = Buffer.concat([bytes.subarray(0, i), insert, bytes.subarray(Math.min(bytes.length, i + (cut % 8)))]);
    const code = codeOf(spliced);
    if (spliced.equals(bytes)) assert.equal(code, null);
    else assert.ok(code !== null && allowed.has(code), String(code));
  }), { numRuns: 2000 });
});
