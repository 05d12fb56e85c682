// Interop helper: runs one RFC 9474 step with @cloudflare/blindrsa-ts (another implementation)
// so tests/core/test_interop_blindrsa_ts.py can check ours against it in both directions.
// Reads one JSON request on stdin, writes one JSON answer on stdout. Bytes are hex strings.
// The package resolves from the project's node_modules (Node walks up from this file).
import { writeSync, readFileSync } from 'node:fs';
import { RSABSSA } from '@cloudflare/blindrsa-ts';

const SUITES = {
  'RSABSSA-SHA384-PSS-Randomized': RSABSSA.SHA384.PSS.Randomized,
  'RSABSSA-SHA384-PSSZERO-Randomized': RSABSSA.SHA384.PSSZero.Randomized,
  'RSABSSA-SHA384-PSS-Deterministic': RSABSSA.SHA384.PSS.Deterministic,
  'RSABSSA-SHA384-PSSZERO-Deterministic': RSABSSA.SHA384.PSSZero.Deterministic,
};
const ALGORITHM = { name: 'RSA-PSS', hash: 'SHA-384' };

const fromHex = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'));
const toHex = (bytes) => Buffer.from(bytes).toString('hex');
const b64url = (hex) => Buffer.from(hex, 'hex').toString('base64url');

function publicKey(request) {
  // JWK from the modulus and exponent of our issuer key.
  const jwk = { kty: 'RSA', n: b64url(request.n), e: b64url(request.e), alg: 'PS384', ext: true };
  return crypto.subtle.importKey('jwk', jwk, ALGORITHM, true, ['verify']);
}

function privateKey(request) {
  // PKCS#8 DER exported by veche_core.blind_rsa.PrivateKey.to_pkcs8().
  return crypto.subtle.importKey('pkcs8', fromHex(request.pkcs8), ALGORITHM, true, ['sign']);
}

async function run(request) {
  const suite = SUITES[request.variant]();
  switch (request.op) {
    case 'blind': {
      const key = await publicKey(request);
      const inputMsg = suite.prepare(fromHex(request.msg));
      const { blindedMsg, inv } = await suite.blind(key, inputMsg);
      return { input_msg: toHex(inputMsg), blinded_msg: toHex(blindedMsg), inv: toHex(inv) };
    }
    case 'finalize': {
      const key = await publicKey(request);
      const sig = await suite.finalize(
        key,
        fromHex(request.input_msg),
        fromHex(request.blind_sig),
        fromHex(request.inv),
      );
      return { sig: toHex(sig) };
    }
    case 'blind_sign': {
      const key = await privateKey(request);
      return { blind_sig: toHex(await suite.blindSign(key, fromHex(request.blinded_msg))) };
    }
    case 'verify': {
      const key = await publicKey(request);
      return { valid: await suite.verify(key, fromHex(request.sig), fromHex(request.input_msg)) };
    }
    default:
      throw new Error(`unknown op ${request.op}`);
  }
}

let answer;
try {
  answer = await run(JSON.parse(readFileSync(0, 'utf8')));
} catch (error) {
  answer = { error: String(error && error.message ? error.message : error) };
}
// A synchronous write: process.stdout.write followed by exit can cut the output.
writeSync(1, JSON.stringify(answer));
