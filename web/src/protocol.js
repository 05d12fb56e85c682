// Veche protocol v1, the client's side, written from docs/protocol.md (section numbers below);
// v2 polls' ballots are sealed by hpke.js.
// A second implementation next to the Python core (verifier/src/veche_core): where they disagree,
// one of them has a bug. No cryptography is written here: RFC 9474 is @cloudflare/blindrsa-ts
// over WebCrypto, secp256k1 / keccak256 / EIP-712 / ABI / keystores are ethers v6, sealed boxes
// are libsodium. This module touches no DOM and no storage, so Node can run it too (tests).

import { RSABSSA } from '@cloudflare/blindrsa-ts';
import {
  AbiCoder,
  Signature,
  SigningKey,
  TypedDataEncoder,
  computeAddress,
  concat,
  getAddress,
  getBytes,
  hexlify,
  keccak256,
  randomBytes,
  recoverAddress,
  toBeHex,
  zeroPadValue,
} from 'ethers';
import sodium from 'libsodium-wrappers';

import { ballotInfo, sealBallot } from './hpke.js';

export const PROTOCOL_VERSION = 1;

// --- bytes ---------------------------------------------------------------------------------------

export const hex = (bytes) => hexlify(bytes);
export const unhex = (value) => getBytes(value);

function uint(value, size, what) {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << BigInt(8 * size)) throw new Error(`${what} does not fit in ${size} bytes`);
  return getBytes(zeroPadValue(toBeHex(big), size));
}

function bytesToBigInt(bytes) {
  return bytes.length ? BigInt(hexlify(bytes)) : 0n;
}

function b64url(bytes) {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

// --- §3.1 issuer public key ----------------------------------------------------------------------

// variant byte → [blindrsa-ts suite, PSS salt length, message-prefix length]
const VARIANTS = {
  1: [() => RSABSSA.SHA384.PSS.Randomized(), 48, 32],
  2: [() => RSABSSA.SHA384.PSSZero.Randomized(), 0, 32],
  3: [() => RSABSSA.SHA384.PSS.Deterministic(), 48, 0],
  4: [() => RSABSSA.SHA384.PSSZero.Deterministic(), 0, 0],
};

/** Decode `0x01 ‖ variant ‖ k (2) ‖ n (k) ‖ e (4)` strictly; returns the fields. */
export function decodeIssuerKey(encoded) {
  const data = unhex(encoded);
  if (data.length < 4 || data[0] !== 0x01) throw new Error('unknown issuer key version');
  const variant = data[1];
  if (!VARIANTS[variant]) throw new Error('unknown issuer key variant');
  const k = (data[2] << 8) | data[3];
  if (data.length !== k + 8) throw new Error('issuer key length does not match its modulus length');
  const n = data.slice(4, 4 + k);
  const e = data.slice(4 + k);
  const nValue = bytesToBigInt(n);
  const bits = nValue.toString(2).length;
  if (n[0] === 0 || (n[k - 1] & 1) === 0 || bits < 2048 || bits > 4096)
    throw new Error('issuer key modulus is not valid');
  if (bytesToBigInt(e) !== 65537n) throw new Error('issuer key exponent must be 65537');
  const [suite, saltLength, prefixLength] = VARIANTS[variant];
  return { variant, k, n, e, suite: suite(), saltLength, prefixLength };
}

/** The issuer key as the WebCrypto RSA-PSS/SHA-384 public key blindrsa-ts works with (a JWK). */
export async function importIssuerKey(decoded) {
  const e = decoded.e.slice(decoded.e.findIndex((b) => b !== 0)); // minimal big-endian (JWK)
  const jwk = { kty: 'RSA', n: b64url(decoded.n), e: b64url(e), alg: 'PS384', ext: true };
  return crypto.subtle.importKey('jwk', jwk, { name: 'RSA-PSS', hash: 'SHA-384' }, true, ['verify']);
}

// --- §3.2 token message, §3.3 credential ---------------------------------------------------------

const TOKEN_TAG = new TextEncoder().encode('veche/ballot-token');

export function tokenMessage(chainId, pollBook, pollId, stratum, tokenAddress) {
  const message = concat([
    TOKEN_TAG,
    new Uint8Array([0x01]),
    uint(chainId, 32, 'chain id'),
    getBytes(getAddress(pollBook)),
    uint(pollId, 32, 'poll id'),
    uint(stratum, 4, 'stratum'),
    getBytes(getAddress(tokenAddress)),
  ]);
  if (getBytes(message).length !== 127) throw new Error('token message must be 127 bytes');
  return getBytes(message);
}

export function encodeCredential(msgPrefix, signature) {
  return getBytes(concat([new Uint8Array([0x01]), msgPrefix, signature]));
}

// --- §3.4 plaintext, §3.5 sealing ----------------------------------------------------------------

/** `0x01 ‖ B`: bit i of the big-endian bitmap B set iff option i (0-based) is chosen. */
export function encodeChoice(choices, optionCount, maxChoices) {
  if (!(optionCount >= 2 && optionCount <= 255 && maxChoices >= 1 && maxChoices <= optionCount)) {
    throw new Error('the poll has invalid options');
  }
  const chosen = [...new Set(choices)];
  if (chosen.length !== choices.length) throw new Error('an option is chosen twice');
  if (chosen.length < 1 || chosen.length > maxChoices) throw new Error(`choose 1 to ${maxChoices} options`);
  const width = Math.ceil(optionCount / 8);
  const out = new Uint8Array(1 + width);
  out[0] = 0x01;
  for (const i of chosen) {
    if (!Number.isInteger(i) || i < 0 || i >= optionCount) throw new Error('no such option');
    out[1 + width - 1 - Math.floor(i / 8)] |= 1 << (i % 8);
  }
  return out;
}

export async function sealTo(publicKey, plaintext) {
  await sodium.ready;
  const pk = unhex(publicKey);
  if (pk.length !== 32) throw new Error('the election key must be 32 bytes');
  return sodium.crypto_box_seal(plaintext, pk);
}

// --- §3.7 ballot encoding and hash ---------------------------------------------------------------

const BALLOT_ABI = ['uint256', 'address', 'uint64', 'uint32', 'bytes', 'bytes', 'bytes'];

export function encodeBallot(b) {
  return AbiCoder.defaultAbiCoder().encode(BALLOT_ABI, [
    b.pollId,
    b.token,
    b.sequence,
    b.stratum,
    b.ciphertext,
    b.tokenSignature,
    b.signature,
  ]);
}

export const ballotHash = (ballot) => keccak256(encodeBallot(ballot));

// --- §4 EIP-712 ----------------------------------------------------------------------------------

export const pollBookDomain = (chainId, pollBook) => ({
  name: 'Veche PollBook',
  version: '1',
  chainId,
  verifyingContract: getAddress(pollBook),
});
export const cityPointsDomain = (chainId, cityPoints) => ({
  name: 'Veche CityPoints',
  version: '1',
  chainId,
  verifyingContract: getAddress(cityPoints),
});

const field = (name, type) => ({ name, type });
export const TYPES = {
  Ballot: [
    field('pollId', 'uint256'),
    field('token', 'address'),
    field('sequence', 'uint64'),
    field('stratum', 'uint32'),
    field('ciphertextHash', 'bytes32'),
    field('tokenSignatureHash', 'bytes32'),
  ],
  IssuanceRequest: [
    field('pollId', 'uint256'),
    field('stratum', 'uint32'),
    field('blindedMessageHash', 'bytes32'),
    field('deadline', 'uint64'),
  ],
  KeyShare: [field('pollId', 'uint256'), field('index', 'uint8'), field('shareHash', 'bytes32')],
  Redemption: [
    field('resident', 'address'),
    field('rewardId', 'uint256'),
    field('nonce', 'uint256'),
    field('deadline', 'uint256'),
  ],
  Donation: [
    field('resident', 'address'),
    field('charityId', 'uint256'),
    field('amount', 'uint256'),
    field('nonce', 'uint256'),
    field('deadline', 'uint256'),
  ],
  Receipt: [
    field('pollId', 'uint256'),
    field('token', 'address'),
    field('sequence', 'uint64'),
    field('ballotHash', 'bytes32'),
    field('acceptedAt', 'uint64'),
  ],
};

/** keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ structHash) for one primary type. */
export const typedDigest = (domain, primaryType, message) =>
  TypedDataEncoder.hash(domain, { [primaryType]: TYPES[primaryType] }, message);

/** 65 bytes r ‖ s ‖ v with v ∈ {27, 28} and low s (ethers normalises s). */
export function signDigest(privateKey, digest) {
  const signature = new SigningKey(privateKey).sign(digest);
  if (BigInt(signature.s) > SECP256K1_HALF_N) throw new Error('high-s signature');
  return signature.serialized;
}

const SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

export function recoverSigner(digest, signature) {
  const sig = Signature.from(signature);
  if (BigInt(sig.s) > SECP256K1_HALF_N) throw new Error('high-s signature');
  return recoverAddress(digest, sig);
}

// --- keys ----------------------------------------------------------------------------------------

/** A fresh secp256k1 key: { privateKey, address }. */
export function newKey() {
  for (;;) {
    const privateKey = hexlify(randomBytes(32));
    try {
      return { privateKey, address: computeAddress(new SigningKey(privateKey).publicKey) };
    } catch {
      // out of range (probability ~2^-128): draw again
    }
  }
}

export const addressOf = (privateKey) => computeAddress(new SigningKey(privateKey).publicKey);

// --- §5 the flow of a ballot ---------------------------------------------------------------------

/** Steps 1–3: a token key, the blinded token message and the signed IssuanceRequest body. */
export async function prepareTokenRequest(poll, stratum, identity, { deadline, tokenKey } = {}) {
  const issuer = decodeIssuerKey(poll.issuerKeys[stratum]);
  const publicKey = await importIssuerKey(issuer);
  const token = tokenKey || newKey();
  const message = tokenMessage(poll.chainId, poll.pollBook, poll.id, stratum, token.address);
  const inputMsg = issuer.suite.prepare(message); // msg_prefix ‖ msg (RFC 9474 §4.1)
  const { blindedMsg, inv } = await issuer.suite.blind(publicKey, inputMsg);
  deadline = deadline ?? Math.floor(Date.now() / 1000) + 600;
  const digest = typedDigest(pollBookDomain(poll.chainId, poll.pollBook), 'IssuanceRequest', {
    pollId: poll.id,
    stratum,
    blindedMessageHash: keccak256(blindedMsg),
    deadline,
  });
  const body = {
    resident: identity.address,
    pollId: poll.id,
    stratum,
    blindedMessage: hex(blindedMsg),
    deadline,
    signature: signDigest(identity.privateKey, digest),
  };
  return { body, pending: { issuer, publicKey, inputMsg, inv, token, stratum } };
}

/** The `pending` of prepareTokenRequest again, from what a wallet kept of it (wallet.loadTokenRequest). */
export async function resumeTokenRequest(poll, kept) {
  const issuer = decodeIssuerKey(poll.issuerKeys[kept.stratum]);
  return {
    issuer,
    publicKey: await importIssuerKey(issuer),
    inputMsg: kept.inputMsg,
    inv: kept.inv,
    token: kept.token,
    stratum: kept.stratum,
  };
}

/** Step 5: unblind, verify (blindrsa-ts checks the signature) and encode the credential. */
export async function finishToken(pending, blindSignature) {
  const { issuer, publicKey, inputMsg, inv } = pending;
  const signature = await issuer.suite.finalize(publicKey, inputMsg, unhex(blindSignature), inv);
  if (!(await issuer.suite.verify(publicKey, signature, inputMsg)))
    throw new Error('the token signature does not verify');
  return encodeCredential(inputMsg.slice(0, issuer.prefixLength), signature);
}

/**
 * The choice sealed for the poll: v1 a sealed box to the dealt X25519 key; v2 (`poll.version`
 * 2) RFC 9180 HPKE to the trustees' certified joint key, bound to the chain, PollBook, poll,
 * stratum and token (hpke.js).
 */
export async function sealChoice(poll, stratum, tokenAddress, plaintext) {
  if (!poll.electionKey) throw new Error("the poll's trustees have not certified its election key yet");
  if (poll.version === 2) {
    const info = ballotInfo(poll.chainId, poll.pollBook, poll.id, stratum, tokenAddress);
    return sealBallot(poll.electionKey, info, plaintext);
  }
  return sealTo(poll.electionKey, plaintext);
}

/** Steps 6–7: seal the choice to the election key and sign the Ballot with the token key. */
export async function makeBallot(poll, token, choices) {
  const plaintext = encodeChoice(choices, poll.options.length, poll.maxChoices);
  const ciphertext = await sealChoice(poll, token.stratum, token.address, plaintext);
  const ballot = {
    pollId: poll.id,
    token: getAddress(token.address),
    sequence: token.sequence,
    stratum: token.stratum,
    ciphertext: hex(ciphertext),
    tokenSignature: hex(token.credential),
  };
  const digest = typedDigest(pollBookDomain(poll.chainId, poll.pollBook), 'Ballot', {
    pollId: ballot.pollId,
    token: ballot.token,
    sequence: ballot.sequence,
    stratum: ballot.stratum,
    ciphertextHash: keccak256(ballot.ciphertext),
    tokenSignatureHash: keccak256(ballot.tokenSignature),
  });
  ballot.signature = signDigest(token.privateKey, digest);
  return ballot;
}

/**
 * §3.8: check the relay's receipt against what we sent — it names our ballot (the hash we
 * compute ourselves), our poll, token and sequence, and its signature recovers `relayer`.
 */
export function checkReceipt(receipt, expected = {}) {
  const problems = [];
  if (receipt.version !== 1) problems.push('unknown receipt version');
  for (const [key, value] of Object.entries(expected)) {
    const got = receipt[key];
    const same = typeof value === 'string' ? String(got).toLowerCase() === value.toLowerCase() : got === value;
    if (!same) problems.push(`the receipt's ${key} is not ours`);
  }
  try {
    const digest = typedDigest(pollBookDomain(receipt.chainId, receipt.pollBook), 'Receipt', {
      pollId: receipt.pollId,
      token: receipt.token,
      sequence: receipt.sequence,
      ballotHash: receipt.ballotHash,
      acceptedAt: receipt.acceptedAt,
    });
    if (recoverSigner(digest, receipt.signature) !== getAddress(receipt.relayer))
      problems.push('the relay signature does not match');
  } catch {
    problems.push('the relay signature is malformed');
  }
  return problems;
}

/** Points requests (§4, CityPoints domain). */
export function redemptionBody(identity, chainId, cityPoints, rewardId, nonce, deadline) {
  const digest = typedDigest(cityPointsDomain(chainId, cityPoints), 'Redemption', {
    resident: identity.address,
    rewardId,
    nonce,
    deadline,
  });
  return { resident: identity.address, rewardId, nonce, deadline, signature: signDigest(identity.privateKey, digest) };
}

export function donationBody(identity, chainId, cityPoints, charityId, amount, nonce, deadline) {
  const digest = typedDigest(cityPointsDomain(chainId, cityPoints), 'Donation', {
    resident: identity.address,
    charityId,
    amount,
    nonce,
    deadline,
  });
  return {
    resident: identity.address,
    charityId,
    amount,
    nonce,
    deadline,
    signature: signDigest(identity.privateKey, digest),
  };
}

/** A short code for a receipt: the first 12 hex digits of the ballot hash, in groups of 4. */
export function shortCode(ballotHashHex) {
  const digits = ballotHashHex.toLowerCase().replace(/^0x/, '').slice(0, 12);
  return digits.match(/.{4}/g).join('-');
}

export function normaliseShortCode(text) {
  const digits = String(text)
    .toLowerCase()
    .replace(/[^0-9a-f]/g, '');
  return digits.length === 12 ? digits : null;
}
