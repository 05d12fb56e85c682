// Runs the browser's protocol module (web/src/protocol.js) under Node for one request, so
// tests/web/test_protocol_js.py can check it byte for byte against the Python core.
// Reads one JSON request on stdin, writes one JSON answer on stdout. Bytes are 0x-hex.
import { readFileSync, writeSync } from 'node:fs';
import { keccak256 } from 'ethers';
import * as p from '../../web/src/protocol.js';

async function run(r) {
  switch (r.op) {
    case 'encode': {
      const domain = p.pollBookDomain(r.chainId, r.pollBook);
      const b = r.ballot;
      return {
        tokenMessage: p.hex(p.tokenMessage(r.chainId, r.pollBook, r.pollId, r.stratum, r.token)),
        choices: r.choices.map(([choice, count, max]) => p.hex(p.encodeChoice(choice, count, max))),
        ballotHash: p.ballotHash(b),
        ballotDigest: p.typedDigest(domain, 'Ballot', {
          pollId: b.pollId,
          token: b.token,
          sequence: b.sequence,
          stratum: b.stratum,
          ciphertextHash: keccak256(b.ciphertext),
          tokenSignatureHash: keccak256(b.tokenSignature),
        }),
        issuanceDigest: p.typedDigest(domain, 'IssuanceRequest', {
          pollId: r.pollId,
          stratum: r.stratum,
          blindedMessageHash: keccak256(r.blinded),
          deadline: r.deadline,
        }),
        redemption: p.redemptionBody(r.identity, r.chainId, r.cityPoints, 3, 5, r.deadline),
        donation: p.donationBody(r.identity, r.chainId, r.cityPoints, 2, 7, 5, r.deadline),
        identityAddress: p.addressOf(r.identity.privateKey),
        sealed: p.hex(await p.sealTo(r.electionKey, p.encodeChoice([1], 3, 1))),
        receiptProblems: p.checkReceipt(r.receipt),
        tamperedReceiptProblems: p.checkReceipt({ ...r.receipt, acceptedAt: r.receipt.acceptedAt + 1 }),
        shortCode: p.shortCode(r.receipt.ballotHash),
      };
    }
    case 'request': {
      const { body, pending } = await p.prepareTokenRequest(r.poll, r.stratum, r.identity, { deadline: r.deadline });
      return { body, token: pending.token, inputMsg: p.hex(pending.inputMsg), inv: p.hex(pending.inv) };
    }
    case 'finish': {
      const issuer = p.decodeIssuerKey(r.poll.issuerKeys[r.stratum]);
      const pending = {
        issuer,
        publicKey: await p.importIssuerKey(issuer),
        inputMsg: p.unhex(r.inputMsg),
        inv: p.unhex(r.inv),
      };
      const credential = await p.finishToken(pending, r.blindSignature);
      const ballot = await p.makeBallot(r.poll, { ...r.token, sequence: 1, stratum: r.stratum, credential }, r.choices);
      return { credential: p.hex(credential), ballot, ballotHash: p.ballotHash(ballot) };
    }
    case 'badkeys':
      return {
        errors: r.keys.map((k) => {
          try {
            p.decodeIssuerKey(k);
            return null;
          } catch (e) {
            return e.message;
          }
        }),
      };
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
