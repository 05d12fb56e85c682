// A resident votes in a protocol v2 poll in a real browser (Debian's chromium, headless, driven by
// playwright-core): the page seals the ballot with HPKE to the trustees' joint key (web/src/hpke.js).
//
// node tests/web/browser_vote_v2.mjs '<json config>'
// JSON lines as browser_flow.mjs: this script sends `address`, waits for the poll id (the test
// enrols the address, creates the poll and runs its ceremony), votes, sends `voted`.
import { mkdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const { apiUrl, artifacts, userDataDir, chromiumPath, password } = JSON.parse(process.argv[2]);
const STEP = 60_000;

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
    '--no-first-run',
    '--disable-dev-shm-usage',
  ],
  timeout: 30_000,
});
context.setDefaultTimeout(STEP);
const consoleErrors = [];

try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) consoleErrors.push(msg.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  const byId = (id) => page.getByTestId(id);
  const ready = () => page.locator('body[data-ready="true"]').waitFor();

  await page.goto(`${apiUrl}/`);
  await ready();
  await page.evaluate(() => localStorage.setItem('veche.maxDelaySeconds', '0.3'));
  await page.reload();
  await ready();
  await byId('new-password').fill(password);
  await byId('new-password-again').fill(password);
  await byId('create-key').click();
  const address = (await byId('address').first().textContent()).trim();
  send({ event: 'address', address });
  const { pollId } = await receive();

  await byId('refresh').click();
  await ready();
  await byId(`poll-${pollId}`).waitFor();
  let ballot = null;
  page.on('request', (request) => {
    if (request.url().endsWith('/ballots') && request.method() === 'POST') ballot = JSON.parse(request.postData());
  });
  await byId(`option-${pollId}-2`).check();
  await byId(`vote-${pollId}`).click();
  await page.getByText('Your vote is recorded: East.').waitFor();
  log('voted in the v2 poll');
  await page.screenshot({ path: join(artifacts, 'resident-voted-v2.png'), fullPage: true });
  send({ event: 'voted', ballot, consoleErrors });
} catch (error) {
  log('failed:', error && error.stack ? error.stack : error);
  send({ event: 'error', message: String(error && error.message ? error.message : error), consoleErrors });
  process.exitCode = 1;
} finally {
  await context.close();
}
process.exit(process.exitCode || 0);
