// Runs web/src/hpke.js and @hpke/core under Node for one request, so tests/web/test_hpke_js.py can
// check them against RFC 9180's vectors and against the Python core (veche_core.hpke).
// Reads one JSON request on stdin, writes one JSON answer on stdout. Bytes are 0x-hex.
import { readFileSync, writeSync } from 'node:fs';
import { getBytes, hexlify } from 'ethers';
import * as v2 from '../../web/src/hpke.js';

const hex = (bytes) => hexlify(new Uint8Array(bytes));
const unhex = (value) => getBytes(value.startsWith('0x') ? value : `0x${value}`);

// The RFC's Base-mode vector through @hpke/core: key pairs from ikm (DeriveKeyPair), the sender
// context from ikmE (the `ekm` test hook), every encryption at its sequence number with its aad,
// the recipient side in step with it, and the exporter on both sides.
async function rfc(vector) {
  const { suite } = v2;
  const info = unhex(vector.info);
  const recipient = await suite.kem.deriveKeyPair(unhex(vector.ikmR));
  const ephemeral = await suite.kem.deriveKeyPair(unhex(vector.ikmE));
  const sender = await suite.createSenderContext({
    recipientPublicKey: recipient.publicKey,
    info,
    ekm: unhex(vector.ikmE),
  });
  const receiver = await suite.createRecipientContext({ recipientKey: recipient, enc: sender.enc, info });
  let sequence = 0;
  const encryptions = [];
  for (const e of vector.encryptions) {
    // Advance both contexts to the vector's sequence number (each seal and open counts one).
    for (; sequence < e.sequence_number; sequence++) await receiver.open(await sender.seal(new Uint8Array(0)));
    const ct = await sender.seal(unhex(e.pt), unhex(e.aad));
    const pt = await receiver.open(unhex(e.ct), unhex(e.aad));
    sequence++;
    encryptions.push({ sequence_number: e.sequence_number, ct: hex(ct), opened: hex(pt) });
  }
  const exports = [];
  const receiverExports = [];
  for (const x of vector.exports) {
    exports.push(hex(await sender.export(unhex(x.exporter_context), x.L)));
    receiverExports.push(hex(await receiver.export(unhex(x.exporter_context), x.L)));
  }
  return {
    skRm: hex(await suite.kem.serializePrivateKey(recipient.privateKey)),
    pkRm: hex(await suite.kem.serializePublicKey(recipient.publicKey)),
    skEm: hex(await suite.kem.serializePrivateKey(ephemeral.privateKey)),
    pkEm: hex(await suite.kem.serializePublicKey(ephemeral.publicKey)),
    enc: hex(sender.enc),
    encryptions,
    exports,
    receiverExports,
  };
}

async function run(r) {
  switch (r.op) {
    case 'rfc':
      return rfc(r.vector);
    case 'info':
      return { infos: r.ballots.map((b) => hex(v2.ballotInfo(b.chainId, b.pollBook, b.pollId, b.stratum, b.token))) };
    case 'seal': {
      const ciphertexts = [];
      for (const b of r.ballots) ciphertexts.push(hex(await v2.sealBallot(r.jointKey, b.info, b.plaintext)));
      return { ciphertexts, uncompressed: hex(v2.uncompressJointKey(r.jointKey)) };
    }
    case 'open': {
      const results = [];
      for (const b of r.ballots) {
        try {
          results.push({ plaintext: hex(await v2.openBallot(r.secret, b.ciphertext, b.info)) });
        } catch (error) {
          results.push({ error: error.message });
        }
      }
      return { results };
    }
    case 'badkeys':
      return {
        errors: r.keys.map((k) => {
          try {
            v2.uncompressJointKey(k);
            return null;
          } catch (e) {
            return e.message;
          }
        }),
      };
    case 'bench': {
      const info = v2.ballotInfo(1, `0x${'11'.repeat(20)}`, 1, 0, `0x${'22'.repeat(20)}`);
      const plaintext = new Uint8Array([1, 8]);
      for (let i = 0; i < 20; i++) await v2.sealBallot(r.jointKey, info, plaintext);
      const start = performance.now();
      for (let i = 0; i < r.count; i++) await v2.sealBallot(r.jointKey, info, plaintext);
      return { sealsPerSecond: (r.count * 1000) / (performance.now() - start) };
    }
    default:
      throw new Error(`unknown op ${r.op}`);
  }
}

let answer;
try {
  answer = await run(JSON.parse(readFileSync(0, 'utf8')));
} catch (error) {
  answer = { error: String(error && error.stack ? error.stack : error) };
}
writeSync(1, JSON.stringify(answer));
