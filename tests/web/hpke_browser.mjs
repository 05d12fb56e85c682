// Seals v2 ballots with web/src/hpke.js inside Debian's chromium (headless, playwright-core): the
// module bundled by esbuild for the same browser targets as web/build.mjs, its HPKE on the
// browser's own WebCrypto. tests/web/test_hpke_js.py opens the ballots with the Python core.
// Reads one JSON request on stdin ({chromiumPath, jointKey, ballots: [{info, plaintext}], benchCount}),
// writes one JSON answer on stdout. Bytes are 0x-hex.
import { readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ORIGIN = 'https://veche.test'; // routed below, never fetched: a secure context, as WebCrypto needs

async function run(r) {
  const bundle = await build({
    entryPoints: [join(root, 'web/src/hpke.js')],
    bundle: true,
    write: false,
    format: 'iife',
    globalName: 'VecheHpke',
    platform: 'browser',
    target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
    minify: true,
    logLevel: 'warning',
  });
  const browser = await chromium.launch({
    executablePath: r.chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
    timeout: 30_000,
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(60_000);
    await page.route(`${ORIGIN}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>hpke</title>' }),
    );
    await page.goto(`${ORIGIN}/`);
    await page.addScriptTag({ content: bundle.outputFiles[0].text });
    return await page.evaluate(async ({ jointKey, ballots, benchCount }) => {
      const { sealBallot, ballotInfo } = globalThis.VecheHpke;
      const toHex = (bytes) => `0x${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
      const fromHex = (text) => Uint8Array.from(text.slice(2).match(/../g) || [], (h) => parseInt(h, 16));
      const ciphertexts = [];
      for (const b of ballots)
        ciphertexts.push(toHex(await sealBallot(jointKey, fromHex(b.info), fromHex(b.plaintext))));
      const info = ballotInfo(1, `0x${'11'.repeat(20)}`, 1, 0, `0x${'22'.repeat(20)}`);
      const plaintext = new Uint8Array([1, 8]);
      for (let i = 0; i < 20; i++) await sealBallot(jointKey, info, plaintext);
      const start = performance.now();
      for (let i = 0; i < benchCount; i++) await sealBallot(jointKey, info, plaintext);
      const sealsPerSecond = (benchCount * 1000) / (performance.now() - start);
      return {
        ciphertexts,
        sealsPerSecond,
        secure: globalThis.isSecureContext,
        userAgent: globalThis.navigator.userAgent,
      };
    }, r);
  } finally {
    await browser.close();
  }
}

let answer;
try {
  answer = await run(JSON.parse(readFileSync(0, 'utf8')));
} catch (error) {
  answer = { error: String(error && error.stack ? error.stack : error) };
}
writeSync(1, JSON.stringify(answer));
