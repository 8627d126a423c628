// The event format, version 1, frozen: these bytes must read the same way
// forever, and the same inputs must always encode to them (docs/log.md has
// the example spelled out).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { decodeEnvelope, encodeEvent, openBody } from '../../src/log/codec.js';
import { VersionVector } from '../../src/log/version-vector.js';
import { packHlc } from '../../src/log/hlc.js';
import type { EventBody } from '../../src/log/event.js';
import { ALICE, BOB, EVENT_KEY, VOLUME, bytesOf } from './helpers.js';

const BODY: EventBody = { type: 'mkdir', parent: bytesOf('root'), name: 'docs', mode: 0o755, uid: 1000, gid: 1000 };
const BODY_CBOR =
  'a66474797065656d6b64697266706172656e7458204813494d137e1631bba301d5acab6e7bb7aa74ce1185d456565ef51d737677b2' +
  '646e616d6564646f6373646d6f64651901ed637569641903e8636769641903e8';
const EVENT =
  '8259010a88015820aa48562b28cf906cb936ddbfc7faf2758e472cc4601a88fc7ad154f7490864d958206af31e589cb5e5ea80fba282' +
  '1f4cb77cda2a56cb3918f4131c0815a2b65fab4f021b018bcfe568000001582084fd9bac333ad79154348296204fa7f8c537a96e0898' +
  '3e5f73b3f5aca8e8edf7818258208bde56b3d37511ee6532f306d54f5b41c17248729f3e1896ca5aca3587fe8b2005587103566246bd' +
  'b39fd567bbb66f984e7a4a8c5cda61712016c36c3db1dba0b02c336be48616a4602403e7b69d7cfd06904cb2fc41832312624e89b12f' +
  'c29e8dcf9bbae8b972630a8bdaa3331aa556df723fce0ebfe1f3a8f36487ac0a0e77c80dbf398e7e8e67ad6445ee28433c140d6499e2' +
  '5840da9ef4ec3c99a18dbf22c0a4e6b9ceda1db07119e57b0fd9ec08fb0182243cff0153c7ef52c55645b92316307679fcbc5eb24e9f' +
  '011bd347419203f48967eb0b';
const ID = 'de62983f7a6aa694665dfb1b07e0ab6342a8c06dc9a6589fc25067093df61198';

test('format v1: the frozen event reads back', () => {
  const env = decodeEnvelope(Buffer.from(EVENT, 'hex'));
  assert.equal(env.id.toString('hex'), ID);
  assert.deepEqual(env.writer, ALICE.writer);
  assert.equal(env.seq, 2n);
  assert.equal(env.hlc, packHlc(1_700_000_000_000, 1));
  assert.deepEqual(env.prev, bytesOf('prev'));
  assert.ok(env.deps.equals(VersionVector.from([[BOB.writer, 5n]])));
  assert.deepEqual(openBody(env, EVENT_KEY).body, BODY);
});

test('format v1: the same inputs encode to the frozen bytes, as docs/log.md derives them', () => {
  const env = encodeEvent({ volume: VOLUME, seq: 2n, hlc: packHlc(1_700_000_000_000, 1), prev: bytesOf('prev'), deps: VersionVector.from([[BOB.writer, 5n]]), body: BODY }, ALICE, EVENT_KEY);
  assert.equal(env.bytes.toString('hex'), EVENT);
  // The body, rebuilt from the documented steps with nothing but node:crypto.
  const aad = Buffer.concat([VOLUME, ALICE.writer, Buffer.from('0000000000000002', 'hex')]);
  const plain = Buffer.from(BODY_CBOR, 'hex');
  const nonceKey = createHmac('sha256', EVENT_KEY).update('bazil/v1/event-nonce').digest();
  const nonce = createHmac('sha256', nonceKey).update(aad).update(plain).digest().subarray(0, 12);
  const cipher = createCipheriv('aes-256-gcm', EVENT_KEY, nonce).setAAD(aad);
  const sealed = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  assert.deepEqual(env.sealedBody, sealed);
  assert.equal(createHash('sha256').update(env.signedPart).digest('hex'), ID);
});
