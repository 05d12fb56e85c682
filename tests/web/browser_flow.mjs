// A resident in a real browser (Debian's chromium, headless, driven by playwright-core), against
// the real API: create a key, vote, revote, keep the receipts, spend points; then, once the test
// has closed and published the poll, read the results page and check a receipt there
// (test_browser.py). With `"v2": true` in the config, the resident votes once in the test's
// protocol v2 poll instead, which the page seals with HPKE to the trustees' joint key
// (web/src/hpke.js), reports the ballot the page posted, and stops (test_browser_v2.py).
//
// node tests/web/browser_flow.mjs '<json config>'
// The test and this script talk in JSON lines: this script writes events on stdout and waits
// for the test's answer on stdin where the test must act (enrol the address and create the poll,
// close and publish). Logs go to stderr. Every wait is bounded.
import { mkdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.argv[2]);
const { apiUrl, artifacts, userDataDir, chromiumPath, password, v2 = false } = config;
let pollId; // the test creates the poll once it has enrolled this resident (registers are fixed at creation)
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const STEP = 60_000;
const SHOTS = v2 ? '-v2' : ''; // the v2 run's screenshots beside, not over, the other run's

mkdirSync(artifacts, { recursive: true });
const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const send = (event) => writeSync(1, `${JSON.stringify(event)}\n`);
const log = (...args) => console.error('[browser]', ...args);

async function receive() {
  const { value, done } = await input.next();
  if (done) throw new Error('the test closed stdin');
  return JSON.parse(value);
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumPath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    '--disable-dev-shm-usage',
  ],
  viewport: PHONE,
  acceptDownloads: true,
  timeout: 30_000,
});
context.setDefaultTimeout(STEP);
const consoleErrors = [];
const httpErrors = []; // [status, path] of every answer >= 400 the pages got

try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    // The browser logs every 4xx answer too; those are collected (with their URL) below.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) consoleErrors.push(msg.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      const url = new URL(response.url());
      httpErrors.push([response.status(), url.pathname + url.search]);
    }
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  const byId = (id) => page.getByTestId(id);
  const ready = () => page.locator('body[data-ready="true"]').waitFor();

  async function shoot(name) {
    for (const [label, size] of Object.entries({ phone: PHONE, desktop: DESKTOP })) {
      await page.setViewportSize(size);
      await page.evaluate(() => globalThis.scrollTo(0, 0)); // in the page, where globalThis is window
      await page.waitForTimeout(150);
      await page.screenshot({ path: join(artifacts, `${name}${SHOTS}-${label}.png`), fullPage: true });
    }
    await page.setViewportSize(PHONE);
  }

  async function saveDownload(testid, name) {
    const [download] = await Promise.all([page.waitForEvent('download'), byId(testid).first().click()]);
    const path = join(artifacts, name);
    await download.saveAs(path);
    return path;
  }

  // --- the resident's page: a new key ------------------------------------------------------------
  await page.goto(`${apiUrl}/`);
  await ready();
  // A short privacy pause before each ballot (the page's default is up to 3 s).
  await page.evaluate(() => localStorage.setItem('veche.maxDelaySeconds', '0.3'));
  await page.reload();
  await ready();
  await shoot('resident-new');
  await byId('new-password').fill(password);
  await byId('new-password-again').fill(password);
  await byId('create-key').click();
  const address = (await byId('address').first().textContent()).trim();
  log('created key', address);
  await byId('polls-error').waitFor(); // not enrolled yet: the page says so
  const notEnrolled = await byId('polls-error').textContent();
  send({ event: 'address', address, notEnrolled });
  ({ pollId } = await receive()); // the test enrolled it, then created the poll

  await byId('refresh').click();
  await ready();
  const poll = byId(`poll-${pollId}`);
  await poll.waitFor();
  if (v2) await voteSealedToTheJointKey();
  else await voteRevoteSpendAndReadTheResults(poll, address);

  // --- v2: one vote, sealed by the page to the ceremony's key -----------------------------------
  async function voteSealedToTheJointKey() {
    let ballot = null;
    page.on('request', (request) => {
      if (request.url().endsWith('/ballots') && request.method() === 'POST') ballot = JSON.parse(request.postData());
    });
    await byId(`option-${pollId}-2`).check();
    await byId(`vote-${pollId}`).click();
    await page.getByText('Your vote is recorded: East.').waitFor();
    log('voted in the v2 poll');
    await shoot('resident-voted');
    send({ event: 'voted', ballot, consoleErrors });
  }

  // --- vote, revote ----------------------------------------------------------------------------
  async function voteRevoteSpendAndReadTheResults(poll, address) {
    const question = await poll.locator('h3').textContent();
    const stratumNote = await byId(`stratum-${pollId}`).textContent();
    // The answer to the first token request is lost after the API has handled it (the connection
    // is reset): the page must send the same request again and get the same answer.
    const tokenRequests = []; // [body, status the API answered, whether the page got it]
    await page.route('**/tokens', async (route) => {
      const response = await route.fetch();
      const lose = tokenRequests.length === 0;
      tokenRequests.push([route.request().postData(), response.status(), !lose]);
      if (lose) await route.abort('connectionreset');
      else await route.fulfill({ response });
    });
    await byId(`option-${pollId}-1`).check();
    await byId(`vote-${pollId}`).click();
    await page.getByText('Your vote is recorded: Station.').waitFor();
    await page.unroute('**/tokens');
    const tokenRequestsKept = await page.evaluate(
      () => Object.keys(localStorage).filter((k) => k.startsWith('veche.tokenRequest.')).length,
    );
    const firstCode = (await byId('receipt-code').textContent()).trim();
    const firstReceipt = await saveDownload('download-receipt', 'receipt-1.json');
    log('voted; receipt', firstCode);

    await byId(`option-${pollId}-2`).check();
    await byId(`vote-${pollId}`).click();
    await page.getByText('Your new vote is recorded: School.').waitFor();
    await page.getByText('Only your last vote counts.').waitFor();
    const secondCode = (await byId('receipt-code').textContent()).trim();
    const secondReceipt = await saveDownload('download-receipt', 'receipt-2.json');
    const receiptWarnings = await page.locator('.recorded .notice.error').count();
    log('revoted; receipt', secondCode);
    await shoot('resident-voted');

    // --- points: credited for taking part (once the issuance is on chain) --------------------------
    const balance = async () => Number((await byId('points-balance').textContent()).trim());
    for (const until = Date.now() + STEP; (await balance()) !== 20;) {
      if (Date.now() > until) throw new Error(`points balance stays at ${await balance()}`);
      await page.waitForTimeout(500);
      await byId('refresh').click();
      await ready();
    }
    await byId('redeem-1').click();
    await byId('points-status').filter({ hasText: 'Museum ticket: done' }).waitFor();
    const afterRedeem = await balance();
    await byId('donate-amount-1').fill('5');
    await byId('donate-1').click();
    await byId('points-status').filter({ hasText: 'Donation of 5 points: done' }).waitFor();
    const afterDonation = await balance();
    log('points', afterRedeem, afterDonation);

    // --- the key: export, lock, unlock ---------------------------------------------------------------
    const keystore = await saveDownload('export-key', 'keystore.json');
    await byId('lock').click();
    await byId('unlock-password').fill(`${password}-wrong`);
    await byId('unlock').click();
    await byId('identity-status').filter({ hasText: 'does not open' }).waitFor();
    await byId('unlock-password').fill(password);
    await byId('unlock').click();
    await byId('lock').waitFor();
    const receiptsListed = await byId('receipts').locator('li').count();
    await shoot('resident');

    send({
      event: 'voted',
      stratumNote,
      address,
      question,
      codes: [firstCode, secondCode],
      receipts: [firstReceipt, secondReceipt],
      receiptWarnings,
      keystore,
      points: [afterRedeem, afterDonation],
      receiptsListed,
      tokenRequests,
      tokenRequestsKept,
    });
    const { cliKeystore } = await receive(); // the test closed the poll, the trustees released, the city published

    // --- the same key imported from a keystore file written by the Python tools (eth-account) --------
    page.once('dialog', (dialog) => dialog.accept());
    await byId('lock').click();
    await byId('forget-key').click();
    await page.getByText('I already have a key').click();
    await byId('import-file').setInputFiles(cliKeystore);
    await byId('import-password').fill(password);
    await byId('import-key').click();
    await byId('lock').waitFor();
    const imported = (await byId('address').first().textContent()).trim();
    await byId('no-polls').waitFor(); // the poll has closed
    const receiptsAfterImport = await byId('receipts').locator('li').count();

    // --- the public results page ---------------------------------------------------------------------
    await page.setViewportSize(DESKTOP);
    await page.goto(`${apiUrl}/results`);
    await ready();
    const card = byId(`result-${pollId}`);
    await card.waitFor();
    const status = (await card.getByTestId('status').textContent()).trim();
    const counts = await card
      .getByTestId('option-bars')
      .locator('[data-count]')
      .evaluateAll((rows) => rows.map((row) => Number(row.dataset.count)));
    const ballotsCounted = Number(await card.getByTestId('ballots-counted').textContent());
    const strata = {};
    for (const bars of await card.getByTestId('stratum-bars').locator('[data-testid^="counts-"]').all()) {
      const stratum = (await bars.getAttribute('data-testid')).replace('counts-', '');
      strata[stratum] = await bars
        .locator('[data-count]')
        .evaluateAll((rows) => rows.map((row) => Number(row.dataset.count)));
    }
    const strataNames = await card.getByTestId('stratum-name').allTextContents();
    const strataNote = await card.getByTestId('strata-note').textContent();
    const cardText = await card.textContent();
    const verifyCommand = await card.getByTestId('verify-command').textContent();
    const datasetHref = await card.getByTestId('dataset-csv').getAttribute('href');

    // The receipt checker: the short code of the counted ballot, then the first receipt's file.
    await byId('check-code').fill(secondCode);
    await byId('check-code-button').click();
    await byId('check-status').first().waitFor();
    const byCode = await byId('check-status').first().getAttribute('data-status');
    const byCodeText = await byId('check-result').textContent();
    await byId('check-file').setInputFiles(firstReceipt);
    await byId('check-signature').waitFor();
    const byFile = await byId('check-status').first().getAttribute('data-status');
    const byFileSignature = await byId('check-signature').textContent();
    await byId('check-code').fill('0000-0000-0000');
    await byId('check-code-button').click();
    await byId('check-status').filter({ hasText: 'no ballot' }).waitFor();
    await byId('check-file').setInputFiles(secondReceipt);
    await byId('check-signature').waitFor();
    await page.locator('#check').scrollIntoViewIfNeeded();
    await shoot('results');

    send({
      event: 'results',
      status,
      counts,
      ballotsCounted,
      strata,
      strataNames,
      strataNote,
      cardText,
      verifyCommand,
      datasetHref,
      byCode,
      byCodeText,
      byFile,
      byFileSignature,
      consoleErrors,
      httpErrors,
      imported,
      receiptsAfterImport,
    });
  }
} catch (error) {
  log('failed:', error && error.stack ? error.stack : error);
  try {
    const page = context.pages()[0];
    if (page) await page.screenshot({ path: join(artifacts, `failure${SHOTS}.png`), fullPage: true });
  } catch (shotError) {
    log('no failure screenshot:', String(shotError));
  }
  send({ event: 'error', message: String(error && error.message ? error.message : error), consoleErrors, httpErrors });
  process.exitCode = 1;
} finally {
  await context.close();
}
process.exit(process.exitCode || 0);
