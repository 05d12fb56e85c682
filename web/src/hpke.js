// Veche protocol v2, ballot ciphertext: RFC 9180 HPKE to the trustees' joint P-256 key.
// The browser's twin of verifier/src/veche_core/hpke.py (where they disagree, one has a bug).
// HPKE is @hpke/core over WebCrypto: Base mode, DHKEM(P-256, HKDF-SHA256) (0x0010), HKDF-SHA256
// (0x0001), AES-128-GCM (0x0001), single-shot, aad empty. @noble/curves only decompresses the
// joint key: 33 bytes (SEC1 compressed) on chain, 65 (uncompressed) for the KEM.
//
//   info       = "veche/ballot/v2" (15) ‖ chainId (32) ‖ PollBook (20) ‖ pollId (32) ‖ stratum (4) ‖ token (20)
//   ciphertext = 0x02 ‖ enc (65) ‖ AES-128-GCM(plaintext) (len + 16)
//
// No DOM, no storage: Node runs it too (tests/web/hpke_js.mjs).

import { Aes128Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from '@hpke/core';
import { p256 } from '@noble/curves/nist.js';
import { concat, getAddress, getBytes, toBeHex, zeroPadValue } from 'ethers';

export const BALLOT_CIPHERTEXT_VERSION = 0x02;
export const BALLOT_INFO_TAG = new TextEncoder().encode('veche/ballot/v2');
export const BALLOT_INFO_LENGTH = 123;
export const ENC_LENGTH = 65;
export const SEAL_OVERHEAD = 1 + ENC_LENGTH + 16; // version, enc, AES-GCM tag

export const suite = new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });

function uint(value, size, what) {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << BigInt(8 * size)) throw new Error(`${what} does not fit in ${size} bytes`);
  return getBytes(zeroPadValue(toBeHex(big), size));
}

/** The 123-byte info that binds a ballot to its chain, PollBook, poll, stratum and token. */
export function ballotInfo(chainId, pollBook, pollId, stratum, token) {
  return getBytes(
    concat([
      BALLOT_INFO_TAG,
      uint(chainId, 32, 'chain id'),
      getBytes(getAddress(pollBook)),
      uint(pollId, 32, 'poll id'),
      uint(stratum, 4, 'stratum'),
      getBytes(getAddress(token)),
    ]),
  );
}

export const sealedLength = (plaintextLength) => plaintextLength + SEAL_OVERHEAD;

function checkInfo(info) {
  const bytes = getBytes(info);
  const tagged = BALLOT_INFO_TAG.every((b, i) => bytes[i] === b);
  if (bytes.length !== BALLOT_INFO_LENGTH || !tagged) {
    throw new Error("not a v2 ballot info (123 bytes starting with 'veche/ballot/v2')");
  }
  return bytes;
}

/** The 65-byte uncompressed form of the 33-byte joint key; throws unless it is a point on P-256. */
export function uncompressJointKey(jointKey) {
  const bytes = getBytes(jointKey);
  if (bytes.length !== 33 || (bytes[0] !== 0x02 && bytes[0] !== 0x03)) {
    throw new Error('the joint key must be a 33-byte compressed P-256 point (0x02/0x03 ‖ x)');
  }
  try {
    return p256.Point.fromBytes(bytes).toBytes(false);
  } catch {
    throw new Error('the joint key is not a point on P-256');
  }
}

/** `0x02 ‖ enc ‖ AES-128-GCM(plaintext)`: the plaintext sealed to the joint key under `info`. */
export async function sealBallot(jointKey, info, plaintext) {
  const recipientPublicKey = await suite.kem.deserializePublicKey(uncompressJointKey(jointKey));
  const { ct, enc } = await suite.seal({ recipientPublicKey, info: checkInfo(info) }, getBytes(plaintext));
  return getBytes(concat([new Uint8Array([BALLOT_CIPHERTEXT_VERSION]), new Uint8Array(enc), new Uint8Array(ct)]));
}

/**
 * The plaintext of a v2 ballot under the 32-byte election secret (big-endian scalar). The page
 * never opens ballots; this is here for the cross-implementation tests and for observers who
 * check a released poll in the browser. Throws for anything that does not open.
 */
export async function openBallot(secret, ciphertext, info) {
  const bytes = getBytes(ciphertext);
  const infoBytes = checkInfo(info);
  if (bytes.length < SEAL_OVERHEAD) {
    throw new Error(`v2 ballot ciphertext is ${bytes.length} bytes, shorter than its ${SEAL_OVERHEAD}-byte overhead`);
  }
  if (bytes[0] !== BALLOT_CIPHERTEXT_VERSION) {
    throw new Error(`unknown ballot ciphertext version 0x${bytes[0].toString(16).padStart(2, '0')} (v2 is 0x02)`);
  }
  const secretBytes = getBytes(secret);
  if (secretBytes.length !== 32) throw new Error('the election secret is a 32-byte scalar');
  const recipientKey = await suite.kem.deserializePrivateKey(secretBytes);
  const enc = bytes.slice(1, 1 + ENC_LENGTH);
  try {
    return new Uint8Array(await suite.open({ recipientKey, enc, info: infoBytes }, bytes.slice(1 + ENC_LENGTH)));
  } catch {
    throw new Error('ballot does not open under this key and info');
  }
}
