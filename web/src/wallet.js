// The resident's wallet in this browser (localStorage), like the CLI's ~/.veche:
// - the identity key as a standard keystore (Web3 Secret Storage v3, scrypt), opened with the
//   resident's password — the same file `veche key import` and every Ethereum wallet read;
// - each poll's one-time token key with its credential, stratum and last sequence (for revoting),
//   encrypted with AES-256-GCM under a key derived (HKDF-SHA-256) from the identity key, so a
//   locked page holds no usable token key either;
// - a token request in flight (kept from before it is sent until it is answered, so that a lost
//   answer is asked for again with the same request): the request as sent, and the token key and
//   blinding state (msg_prefix ‖ msg and the inverse, which would link the token to the
//   resident) sealed as the token keys are;
// - the relay's signed receipts (public data: they say nothing about the choice).

import { decryptKeystoreJson, encryptKeystoreJson, getAddress, getBytes, hexlify } from 'ethers';

const IDENTITY = 'veche.identity.v1';
const tokenKey = (address, poll) =>
  `veche.token.v1.${address.toLowerCase()}.${poll.chainId}-${poll.pollBook.toLowerCase()}-${poll.id}`;
const requestKey = (address, poll) =>
  `veche.tokenRequest.v1.${address.toLowerCase()}.${poll.chainId}-${poll.pollBook.toLowerCase()}-${poll.id}`;
const receiptsKey = (address) => `veche.receipts.v1.${address.toLowerCase()}`;

// scrypt cost of new keystores: eth-account's default (2^18), as the CLI writes them.
const SCRYPT_N = 1 << 18;

export class WalletError extends Error {}

/** Keystore v3 with the standard lower-case `crypto` member (ethers writes `Crypto`). */
function normalise(json) {
  const keystore = JSON.parse(json);
  if (keystore.Crypto && !keystore.crypto) {
    keystore.crypto = keystore.Crypto;
    delete keystore.Crypto;
  }
  return JSON.stringify(keystore);
}

export function storedKeystore() {
  return localStorage.getItem(IDENTITY);
}

export function storedAddress() {
  const json = storedKeystore();
  if (!json) return null;
  try {
    const address = JSON.parse(json).address;
    return getAddress(address.startsWith('0x') ? address : `0x${address}`);
  } catch {
    return null;
  }
}

export async function createIdentity(key, password, progress) {
  const json = await encryptKeystoreJson({ address: key.address, privateKey: key.privateKey }, password, {
    scrypt: { N: SCRYPT_N },
    progressCallback: progress,
  });
  localStorage.setItem(IDENTITY, normalise(json));
  return { address: key.address, privateKey: key.privateKey };
}

async function open(json, password, progress) {
  try {
    const account = await decryptKeystoreJson(json, password, progress);
    return { address: getAddress(account.address), privateKey: account.privateKey };
  } catch (error) {
    if (/incorrect password|invalid password/i.test(String(error?.message)))
      throw new WalletError('The password does not open this key.');
    throw new WalletError(`This is not a keystore file this page can open (${error?.shortMessage || error?.message}).`);
  }
}

export async function unlock(password, progress) {
  const json = storedKeystore();
  if (!json) throw new WalletError('There is no key in this browser.');
  return open(json, password, progress);
}

/** Import a keystore file (checks that the password opens it), replacing the stored one. */
export async function importKeystore(text, password, progress) {
  let json;
  try {
    json = normalise(text);
  } catch {
    throw new WalletError('This file is not a keystore (JSON) file.');
  }
  const identity = await open(json, password, progress);
  localStorage.setItem(IDENTITY, json);
  return identity;
}

export function forgetIdentity() {
  localStorage.removeItem(IDENTITY);
}

// --- token keys ----------------------------------------------------------------------------------

async function storeKey(identity) {
  const base = await crypto.subtle.importKey('raw', getBytes(identity.privateKey), 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      salt: new TextEncoder().encode('veche/web'),
      info: new TextEncoder().encode('token store v1'),
    },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

async function seal(identity, bytes) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, await storeKey(identity), bytes);
  return { iv: hexlify(iv), sealed: hexlify(new Uint8Array(sealed)) };
}

async function unseal(identity, iv, sealed, what) {
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: getBytes(iv) }, await storeKey(identity), getBytes(sealed)),
    );
  } catch {
    throw new WalletError(`${what} does not open with your identity key.`);
  }
}

export function hasToken(address, poll) {
  return localStorage.getItem(tokenKey(address, poll)) !== null;
}

/** Keep the poll's token (and drop the request it came from: it is answered). */
export async function saveToken(identity, poll, token) {
  const { iv, sealed } = await seal(identity, getBytes(token.privateKey));
  localStorage.setItem(
    tokenKey(identity.address, poll),
    JSON.stringify({
      version: 1,
      address: token.address,
      stratum: token.stratum,
      credential: hexlify(token.credential),
      sequence: token.sequence,
      iv,
      sealedKey: sealed,
    }),
  );
  localStorage.removeItem(requestKey(identity.address, poll));
}

export async function loadToken(identity, poll) {
  const raw = localStorage.getItem(tokenKey(identity.address, poll));
  if (!raw) return null;
  const stored = JSON.parse(raw);
  const key = await unseal(identity, stored.iv, stored.sealedKey, "This poll's token key");
  return {
    privateKey: hexlify(key),
    address: stored.address,
    stratum: stored.stratum,
    credential: getBytes(stored.credential),
    sequence: stored.sequence,
  };
}

/** Keep a token request before it is sent: `body` as sent, `pending` from prepareTokenRequest. */
export async function saveTokenRequest(identity, poll, body, pending) {
  const secrets = new TextEncoder().encode(
    JSON.stringify({
      privateKey: pending.token.privateKey,
      inputMsg: hexlify(pending.inputMsg),
      inv: hexlify(pending.inv),
    }),
  );
  localStorage.setItem(
    requestKey(identity.address, poll),
    JSON.stringify({
      version: 1,
      body,
      stratum: pending.stratum,
      tokenAddress: pending.token.address,
      ...(await seal(identity, secrets)),
    }),
  );
}

/** The kept request: { body, stratum, token: { address, privateKey }, inputMsg, inv }, or null. */
export async function loadTokenRequest(identity, poll) {
  const raw = localStorage.getItem(requestKey(identity.address, poll));
  if (!raw) return null;
  const stored = JSON.parse(raw);
  const secrets = JSON.parse(
    new TextDecoder().decode(await unseal(identity, stored.iv, stored.sealed, 'The pending token request')),
  );
  return {
    body: stored.body,
    stratum: stored.stratum,
    token: { address: stored.tokenAddress, privateKey: secrets.privateKey },
    inputMsg: getBytes(secrets.inputMsg),
    inv: getBytes(secrets.inv),
  };
}

export function dropTokenRequest(address, poll) {
  localStorage.removeItem(requestKey(address, poll));
}

export function updateSequence(address, poll, sequence) {
  const key = tokenKey(address, poll);
  const stored = JSON.parse(localStorage.getItem(key));
  localStorage.setItem(key, JSON.stringify({ ...stored, sequence }));
}

export function tokenSequence(address, poll) {
  const raw = localStorage.getItem(tokenKey(address, poll));
  return raw ? JSON.parse(raw).sequence : 0;
}

// --- receipts ------------------------------------------------------------------------------------

export function receipts(address) {
  try {
    return JSON.parse(localStorage.getItem(receiptsKey(address)) || '[]');
  } catch {
    return [];
  }
}

/** Add or update (by ballot hash) a receipt; `extra` holds the poll's question for display. */
export function saveReceipt(address, receipt, extra = {}) {
  const list = receipts(address);
  const index = list.findIndex((r) => r.receipt.ballotHash === receipt.ballotHash);
  const entry = { ...(index >= 0 ? list[index] : {}), ...extra, receipt };
  if (index >= 0) list[index] = entry;
  else list.push(entry);
  localStorage.setItem(receiptsKey(address), JSON.stringify(list));
  return entry;
}
