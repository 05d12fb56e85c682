// The resident's page: identity key, polls, one-step voting with a receipt, points.
// The whole client side of the protocol runs here (protocol.js); the API sees a blinded message,
// a sealed ballot signed by a one-time token key, and signed points requests.

import { ApiError, api, ballotStatusText, explain, postRetrying } from './api.js';
import * as protocol from './protocol.js';
import { download, el, readFileText, replace, sleep, status, when } from './ui.js';
import * as wallet from './wallet.js';

// Wait a random 0..MAX_DELAY seconds between getting a token and sending the ballot, so the time
// of the token's issuance does not point to the ballot (docs/threat-model.md). A resident (or a
// test) may set localStorage 'veche.maxDelaySeconds'.
const MAX_DELAY = Number(localStorage.getItem('veche.maxDelaySeconds') ?? 3);

const state = {
  address: wallet.storedAddress(),
  identity: null, // { address, privateKey } once unlocked; kept in memory only
  polls: null,
  pollsError: null,
  recorded: {}, // pollId → the confirmation of the vote just cast
  deployment: null,
};

const sections = {
  identity: el('section', { class: 'card', id: 'identity', 'aria-labelledby': 'identity-title' }),
  polls: el('section', { id: 'polls', class: 'stack', 'aria-label': 'Your polls' }),
  receipts: el('section', { class: 'card', id: 'receipts', 'aria-labelledby': 'receipts-title' }),
  points: el('section', { class: 'card', id: 'points', 'aria-labelledby': 'points-title' }),
};

// --- identity ------------------------------------------------------------------------------------

function passwordField(label, testid, autocomplete = 'current-password') {
  const input = el('input', { type: 'password', required: true, autocomplete, 'data-testid': testid, minlength: 8 });
  return [el('label', { class: 'field' }, label, input), input];
}

function progressReporter(node, what) {
  let shown = -1;
  return (fraction) => {
    const percent = Math.floor(fraction * 10) * 10;
    if (percent !== shown) {
      shown = percent;
      status(node, `${what}… ${percent}%`);
    }
  };
}

function renderIdentity() {
  const box = sections.identity;
  const note = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'identity-status' });
  if (!state.address) {
    const [pwLabel, pw] = passwordField('Choose a password (8 characters or more)', 'new-password', 'new-password');
    const [againLabel, again] = passwordField('Repeat the password', 'new-password-again', 'new-password');
    const create = el(
      'form',
      {
        class: 'stack',
        onsubmit: async (event) => {
          event.preventDefault();
          if (pw.value !== again.value) return status(note, 'The two passwords differ.', 'error');
          busy(create, true);
          try {
            state.identity = await wallet.createIdentity(
              protocol.newKey(),
              pw.value,
              progressReporter(note, 'Encrypting your key'),
            );
            state.address = state.identity.address;
            await refreshAll();
          } catch (error) {
            status(note, explain(error), 'error');
          } finally {
            busy(create, false);
          }
        },
      },
      pwLabel,
      againLabel,
      el(
        'div',
        { class: 'row' },
        el('button', { class: 'primary', type: 'submit', 'data-testid': 'create-key' }, 'Create my key'),
      ),
    );

    const file = el('input', { type: 'file', accept: '.json,application/json', 'data-testid': 'import-file' });
    const [ipwLabel, ipw] = passwordField("The keystore's password", 'import-password');
    const importer = el(
      'form',
      {
        class: 'stack',
        onsubmit: async (event) => {
          event.preventDefault();
          if (!file.files.length) return status(note, 'Choose your keystore file first.', 'error');
          busy(importer, true);
          try {
            state.identity = await wallet.importKeystore(
              await readFileText(file.files[0]),
              ipw.value,
              progressReporter(note, 'Opening your keystore'),
            );
            state.address = state.identity.address;
            await refreshAll();
          } catch (error) {
            status(note, explain(error), 'error');
          } finally {
            busy(importer, false);
          }
        },
      },
      el('label', { class: 'field' }, 'Keystore file', file),
      ipwLabel,
      el('div', { class: 'row' }, el('button', { type: 'submit', 'data-testid': 'import-key' }, 'Import')),
    );

    replace(
      box,
      el('h1', { id: 'identity-title' }, 'Your identity key'),
      el(
        'p',
        {},
        'To vote you need an identity key. It is made in this browser and stays here, encrypted with your password. ',
        'The city enrols its address once; your ballots themselves carry no identity.',
      ),
      create,
      el('details', {}, el('summary', {}, 'I already have a key (a keystore file)'), importer),
      note,
    );
    return;
  }
  if (!state.identity) {
    const [pwLabel, pw] = passwordField('Password', 'unlock-password');
    const form = el(
      'form',
      {
        class: 'stack',
        onsubmit: async (event) => {
          event.preventDefault();
          busy(form, true);
          try {
            state.identity = await wallet.unlock(pw.value, progressReporter(note, 'Opening your key'));
            await refreshAll();
          } catch (error) {
            status(note, explain(error), 'error');
          } finally {
            busy(form, false);
          }
        },
      },
      pwLabel,
      el(
        'div',
        { class: 'row' },
        el('button', { class: 'primary', type: 'submit', 'data-testid': 'unlock' }, 'Unlock'),
        el(
          'button',
          { type: 'button', onclick: () => download(`veche-key-${state.address}.json`, wallet.storedKeystore()) },
          'Download keystore',
        ),
        el(
          'button',
          {
            type: 'button',
            'data-testid': 'forget-key',
            onclick: () => {
              if (
                confirm(
                  'Remove the key from this browser? Without a downloaded keystore file you cannot vote with it again.',
                )
              ) {
                wallet.forgetIdentity();
                state.address = null;
                renderAll();
              }
            },
          },
          'Use another key',
        ),
      ),
    );
    replace(
      box,
      el('h1', { id: 'identity-title' }, 'Unlock your key'),
      el('p', {}, 'Key ', el('span', { class: 'address', 'data-testid': 'address' }, state.address)),
      form,
      note,
    );
    return;
  }
  replace(
    box,
    el('h1', { id: 'identity-title' }, 'Your key'),
    el('p', { class: 'address', 'data-testid': 'address' }, state.address),
    el(
      'p',
      { class: 'muted small' },
      'This is your address. The city enrols it once (with your district and year of birth); it never appears on your ballots.',
    ),
    el(
      'div',
      { class: 'row' },
      el(
        'button',
        {
          type: 'button',
          'data-testid': 'export-key',
          onclick: () => download(`veche-key-${state.address}.json`, wallet.storedKeystore()),
        },
        'Download keystore',
      ),
      el(
        'button',
        {
          type: 'button',
          'data-testid': 'lock',
          onclick: () => {
            state.identity = null;
            renderAll();
          },
        },
        'Lock',
      ),
      el('button', { type: 'button', 'data-testid': 'refresh', onclick: () => refreshAll() }, 'Refresh'),
    ),
    note,
  );
}

function busy(form, on) {
  for (const control of form.querySelectorAll('button, input')) control.disabled = on;
}

// --- polls and voting ----------------------------------------------------------------------------

async function loadPolls() {
  state.pollsError = null;
  try {
    // The address goes in the body: a URL is kept by every access log and proxy on the way.
    state.polls = await api('/polls/eligible', { method: 'POST', body: { resident: state.address } });
  } catch (error) {
    state.polls = null;
    state.pollsError = error;
  }
}

function renderPolls() {
  const box = sections.polls;
  if (!state.address) return replace(box);
  const heading = el('h2', {}, 'Your polls');
  if (state.pollsError) {
    const enrol = state.pollsError instanceof ApiError && state.pollsError.code === 'resident.unknown';
    return replace(
      box,
      heading,
      el(
        'div',
        { class: 'card' },
        el(
          'p',
          { class: enrol ? 'notice' : 'notice error', 'data-testid': 'polls-error' },
          enrol
            ? 'Your address is not enrolled yet. The city enrols residents: give them the address above, then press Refresh.'
            : `The polls could not be loaded: ${explain(state.pollsError)}`,
        ),
      ),
    );
  }
  if (!state.polls) return replace(box, heading, el('p', { class: 'muted' }, 'Loading your polls…'));
  if (!state.polls.length)
    return replace(
      box,
      heading,
      el(
        'div',
        { class: 'card' },
        el('p', { class: 'muted', 'data-testid': 'no-polls' }, 'There is no open poll for you right now.'),
      ),
    );
  return replace(box, heading, state.polls.map(pollCard));
}

function pollCard(poll) {
  const multiple = poll.maxChoices > 1;
  const voted = wallet.tokenSequence(state.address, poll);
  const inputs = poll.options.map((option, index) =>
    el('input', {
      type: multiple ? 'checkbox' : 'radio',
      name: `poll-${poll.id}`,
      value: index,
      'data-testid': `option-${poll.id}-${index}`,
    }),
  );
  const note = el('p', {
    class: 'status',
    role: 'status',
    'aria-live': 'polite',
    'data-testid': `vote-status-${poll.id}`,
  });
  const button = el(
    'button',
    { class: 'primary', type: 'submit', 'data-testid': `vote-${poll.id}` },
    voted ? 'Change my vote' : 'Vote',
  );
  const form = el(
    'form',
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const choices = inputs.filter((i) => i.checked).map((i) => Number(i.value));
        if (!state.identity) return status(note, 'Unlock your key first (above).', 'error');
        if (!choices.length)
          return status(note, multiple ? `Choose 1 to ${poll.maxChoices} options.` : 'Choose an option.', 'error');
        if (choices.length > poll.maxChoices)
          return status(note, `Choose at most ${poll.maxChoices} options.`, 'error');
        busy(form, true);
        try {
          state.recorded[poll.id] = await vote(poll, choices, (message) => status(note, message));
          status(note, '');
          renderPolls();
          renderReceipts();
        } catch (error) {
          status(note, `Your vote was not recorded: ${explain(error)}`, 'error');
          busy(form, false);
        }
      },
    },
    el(
      'fieldset',
      { class: 'options' },
      el('legend', { class: 'muted small' }, multiple ? `Choose up to ${poll.maxChoices}` : 'Choose one'),
      poll.options.map((option, index) => el('label', { class: 'option' }, inputs[index], el('span', {}, option))),
    ),
    el('div', { class: 'row' }, button),
    note,
  );

  const recorded = state.recorded[poll.id];
  return el(
    'article',
    { class: 'card poll', 'data-testid': `poll-${poll.id}`, 'data-poll-id': poll.id },
    el('h3', {}, poll.question),
    el(
      'p',
      { class: 'meta' },
      `Closes ${when(poll.closesAt)} · ${poll.points} points for taking part`,
      voted ? ' · you have voted; you may change your vote until it closes (only your last vote counts)' : '',
    ),
    stratumNote(poll),
    form,
    recorded ? confirmation(recorded) : null,
  );
}

// Which stratum the ballot is counted in, and what that stratum tells others (docs/threat-model.md).
function stratumNote(poll) {
  const stratum = poll.strata[poll.residentStratum];
  if (!stratum) return null;
  const size = stratum.registerSize === null ? '' : ` (${stratum.registerSize} eligible residents)`;
  return el(
    'p',
    { class: 'muted small', 'data-testid': `stratum-${poll.id}` },
    `Your ballot is counted in the stratum ${stratum.name}${size}. The published data list each ballot's stratum with its choice, never who cast it; the points ledger shows who took part.`,
  );
}

function confirmation(recorded) {
  const entry = recorded.entry;
  return el(
    'div',
    { class: 'recorded', role: 'status', 'data-testid': `recorded-${entry.receipt.pollId}` },
    el(
      'strong',
      { 'data-testid': 'recorded-message' },
      `✓ Your ${recorded.revote ? 'new ' : ''}vote is recorded: ${recorded.picked}.`,
    ),
    recorded.revote ? el('span', {}, 'Only your last vote counts.') : null,
    recorded.problems.length
      ? el(
          'span',
          { class: 'notice error' },
          `But the receipt does not check out: ${recorded.problems.join('; ')}. Keep it: it is evidence.`,
        )
      : null,
    el(
      'span',
      {},
      'Your receipt code: ',
      el('span', { class: 'code', 'data-testid': 'receipt-code' }, protocol.shortCode(entry.receipt.ballotHash)),
    ),
    el(
      'span',
      { class: 'small' },
      'Check it later on the ',
      el('a', { href: '/results#check' }, 'results page'),
      ', or keep the receipt file:',
    ),
    el(
      'div',
      { class: 'row' },
      el(
        'button',
        { type: 'button', 'data-testid': 'download-receipt', onclick: () => downloadReceipt(entry) },
        'Download receipt',
      ),
    ),
  );
}

function downloadReceipt(entry) {
  const name = `veche-receipt-poll${entry.receipt.pollId}-${protocol.shortCode(entry.receipt.ballotHash)}.json`;
  download(name, JSON.stringify(entry.receipt, null, 2));
}

/** §5 in one step: token (first time), seal, sign, relay; returns what to show. */
async function vote(poll, choices, say) {
  const identity = state.identity;
  let token = await wallet.loadToken(identity, poll);
  const revote = token !== null;
  if (!token) {
    say('Getting your anonymous ballot token…');
    token = await getToken(poll, identity);
  }
  for (let attempt = 0; ; attempt += 1) {
    token.sequence += 1;
    say('Sealing your choice and signing the ballot…');
    const ballot = await protocol.makeBallot(poll, token, choices);
    const hash = protocol.ballotHash(ballot);
    if (attempt === 0 && MAX_DELAY > 0) {
      say('Sending your ballot after a short random pause (for your privacy)…');
      await sleep(Math.random() * MAX_DELAY * 1000);
    }
    let answer;
    try {
      answer = await postRetrying('/ballots', ballot);
    } catch (error) {
      // Our stored sequence is behind the relay's (an earlier answer was lost): go above it.
      if (error instanceof ApiError && error.code === 'ballot.stale_sequence' && attempt < 3) continue;
      throw error;
    }
    wallet.updateSequence(identity.address, poll, token.sequence);
    const problems = answer.ballotHash === hash ? [] : ['the relay names another ballot hash'];
    problems.push(
      ...protocol.checkReceipt(answer.receipt, {
        ballotHash: hash,
        pollId: poll.id,
        token: token.address,
        sequence: token.sequence,
        chainId: poll.chainId,
        pollBook: poll.pollBook,
      }),
    );
    const entry = wallet.saveReceipt(identity.address, answer.receipt, {
      question: poll.question,
      savedAt: Math.floor(Date.now() / 1000),
    });
    const picked = choices.map((i) => poll.options[i]).join(', ');
    return { entry, picked, revote, problems };
  }
}

/**
 * The poll's token, through a lost answer or a closed page: the request is kept (sealed) before it
 * is sent, and a kept one is sent again, the same bytes, until the API answers it — the same
 * request gets the same blind signature. Only a kept request the API calls expired is replaced:
 * the API answers one it stored whatever its deadline, so an expired one never got there.
 */
async function getToken(poll, identity) {
  const kept = await wallet.loadTokenRequest(identity, poll);
  let pending = null;
  let answer = null;
  if (kept) {
    try {
      answer = await postRetrying('/tokens', kept.body);
      pending = await protocol.resumeTokenRequest(poll, kept);
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'issuance.expired')) throw error;
      wallet.dropTokenRequest(identity.address, poll);
    }
  }
  if (!answer) {
    let body;
    ({ body, pending } = await protocol.prepareTokenRequest(poll, poll.residentStratum, identity));
    await wallet.saveTokenRequest(identity, poll, body, pending);
    answer = await postRetrying('/tokens', body);
  }
  const credential = await protocol.finishToken(pending, answer.blindSignature);
  const token = { ...pending.token, stratum: pending.stratum, credential, sequence: 0 };
  await wallet.saveToken(identity, poll, token); // before anything else: needed to revote
  return token;
}

// --- receipts ------------------------------------------------------------------------------------

function renderReceipts() {
  const box = sections.receipts;
  if (!state.address) return replace(box);
  const list = wallet.receipts(state.address).slice().reverse();
  if (!list.length) return replace(box);
  replace(
    box,
    el('h2', { id: 'receipts-title' }, 'Your receipts'),
    el(
      'p',
      { class: 'muted small' },
      'One per ballot you sent. If you changed your vote, only the last ballot of a poll counts.',
    ),
    el(
      'ul',
      { class: 'plain', 'data-testid': 'receipts' },
      list.map((entry) => {
        const note = el('span', { class: 'status small', 'data-testid': 'receipt-status' });
        return el(
          'li',
          { class: 'spread' },
          el(
            'div',
            {},
            el('div', {}, entry.question || `Poll ${entry.receipt.pollId}`, ` — ballot ${entry.receipt.sequence}`),
            el(
              'div',
              { class: 'small muted' },
              'Code ',
              el('span', { class: 'mono' }, protocol.shortCode(entry.receipt.ballotHash)),
              ` · accepted ${when(entry.receipt.acceptedAt)}`,
            ),
            note,
          ),
          el(
            'div',
            { class: 'row' },
            el(
              'button',
              {
                type: 'button',
                onclick: async () => {
                  try {
                    const answer = await api(`/ballots/${entry.receipt.ballotHash}`);
                    status(note, `Ballot ${ballotStatusText(answer)}.`);
                    // A confirmed receipt has its block and transaction: keep that one.
                    if (answer.status === 'confirmed') wallet.saveReceipt(state.address, answer.receipt);
                  } catch (error) {
                    status(note, explain(error), 'error');
                  }
                },
              },
              'Check',
            ),
            el(
              'button',
              {
                type: 'button',
                onclick: () =>
                  downloadReceipt(
                    wallet.receipts(state.address).find((r) => r.receipt.ballotHash === entry.receipt.ballotHash),
                  ),
              },
              'Download',
            ),
          ),
        );
      }),
    ),
  );
}

// --- points --------------------------------------------------------------------------------------

async function deployment() {
  state.deployment = state.deployment || (await api('/deployment'));
  return state.deployment;
}

async function renderPoints() {
  const box = sections.points;
  if (!state.address) return replace(box);
  const note = el('p', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'points-status' });
  let points, rewards, charities;
  try {
    [points, rewards, charities] = await Promise.all([
      api(`/points/${state.address}`),
      api('/points/rewards'),
      api('/points/charities'),
    ]);
  } catch (error) {
    return replace(
      box,
      el('h2', { id: 'points-title' }, 'Your points'),
      el('p', { class: 'notice error' }, explain(error)),
    );
  }
  const request = async (button, make, path, done) => {
    if (!state.identity) return status(note, 'Unlock your key first (above).', 'error');
    button.disabled = true;
    try {
      const { chainId, cityPoints } = await deployment();
      const { nonce } = await api(`/points/${state.address}`);
      const deadline = Math.floor(Date.now() / 1000) + 600;
      let answer = await api(path, { method: 'POST', body: make(chainId, cityPoints, nonce, deadline) });
      status(note, `${done} requested; waiting for the chain…`);
      const until = Date.now() + 60_000;
      while (!['confirmed', 'failed', 'rejected'].includes(answer.status) && Date.now() < until) {
        await sleep(500);
        answer = await api(`/points/requests/${answer.id}`);
      }
      await renderPoints();
      status(
        sections.points.querySelector('[data-testid=points-status]'),
        answer.status === 'confirmed'
          ? `${done}: done (block ${answer.blockNumber}).`
          : `${done}: ${answer.status}${answer.reason ? ` (${answer.reason})` : ''}.`,
        answer.status === 'confirmed' ? '' : 'error',
      );
    } catch (error) {
      status(note, explain(error), 'error');
      button.disabled = false;
    }
  };
  const label = (entry) =>
    ({
      PointsCredited: `for taking part in poll ${entry.pollId}`,
      RewardRedeemed: `reward ${entry.rewardId}`,
      PointsDonated: `donation to charity ${entry.charityId}`,
    })[entry.event] || entry.event;
  replace(
    box,
    el('h2', { id: 'points-title' }, 'Your points'),
    el('p', {}, el('span', { class: 'balance', 'data-testid': 'points-balance' }, String(points.balance)), ' points'),
    points.history.length
      ? el(
          'details',
          {},
          el('summary', {}, `History (${points.history.length})`),
          el(
            'ul',
            { class: 'plain small', 'data-testid': 'points-history' },
            points.history.map((entry) =>
              el(
                'li',
                { class: 'spread' },
                el('span', {}, label(entry)),
                el('span', { class: 'mono' }, `${entry.amount > 0 ? '+' : ''}${entry.amount}`),
              ),
            ),
          ),
        )
      : null,
    el('h3', {}, 'Rewards'),
    rewards.filter((r) => r.active).length
      ? el(
          'ul',
          { class: 'plain', 'data-testid': 'rewards' },
          rewards
            .filter((r) => r.active)
            .map((reward) => {
              const button = el('button', {
                type: 'button',
                'data-testid': `redeem-${reward.id}`,
                disabled: reward.stock < 1 || points.balance < reward.price,
              });
              button.textContent = `Redeem for ${reward.price}`;
              button.addEventListener('click', () =>
                request(
                  button,
                  (chainId, cityPoints, nonce, deadline) =>
                    protocol.redemptionBody(state.identity, chainId, cityPoints, reward.id, nonce, deadline),
                  '/points/redemptions',
                  `${reward.name || `Reward ${reward.id}`}`,
                ),
              );
              return el(
                'li',
                { class: 'spread' },
                el(
                  'div',
                  {},
                  el('div', {}, reward.name || `Reward ${reward.id}`),
                  el('div', { class: 'small muted' }, `${reward.description || ''} ${reward.stock} left`.trim()),
                ),
                button,
              );
            }),
        )
      : el('p', { class: 'muted small' }, 'No rewards in the catalog right now.'),
    el('h3', {}, 'Donate to a charity'),
    charities.filter((c) => c.active).length
      ? el(
          'ul',
          { class: 'plain', 'data-testid': 'charities' },
          charities
            .filter((c) => c.active)
            .map((charity) => {
              const amount = el('input', {
                type: 'number',
                min: 1,
                max: Math.max(1, points.balance),
                value: Math.min(5, Math.max(1, points.balance)),
                class: 'amount',
                'aria-label': 'Points to donate',
                'data-testid': `donate-amount-${charity.id}`,
              });
              const button = el(
                'button',
                { type: 'button', 'data-testid': `donate-${charity.id}`, disabled: points.balance < 1 },
                'Donate',
              );
              button.addEventListener('click', () =>
                request(
                  button,
                  (chainId, cityPoints, nonce, deadline) =>
                    protocol.donationBody(
                      state.identity,
                      chainId,
                      cityPoints,
                      charity.id,
                      Number(amount.value),
                      nonce,
                      deadline,
                    ),
                  '/points/donations',
                  `Donation of ${amount.value} points`,
                ),
              );
              return el(
                'li',
                { class: 'spread' },
                el(
                  'div',
                  {},
                  el('div', {}, charity.name || `Charity ${charity.id}`),
                  el(
                    'div',
                    { class: 'small muted' },
                    `${charity.description || ''} Received so far: ${charity.balance}`.trim(),
                  ),
                ),
                el('div', { class: 'row' }, amount, button),
              );
            }),
        )
      : el('p', { class: 'muted small' }, 'No charities registered right now.'),
    note,
  );
}

// --- page ----------------------------------------------------------------------------------------

function renderAll() {
  renderIdentity();
  renderPolls();
  renderReceipts();
  renderPoints();
}

async function refreshAll() {
  document.body.dataset.ready = 'false'; // until everything is drawn again (tests wait on it)
  try {
    if (state.address) await loadPolls();
    renderIdentity();
    renderPolls();
    renderReceipts();
    await renderPoints();
  } finally {
    document.body.dataset.ready = 'true';
  }
}

async function main() {
  const app = document.getElementById('app');
  replace(app, sections.identity, sections.polls, sections.receipts, sections.points);
  await refreshAll();
}

main().catch((error) => {
  replace(
    document.getElementById('app'),
    el('p', { class: 'notice error' }, `The page could not start: ${explain(error)}`),
  );
});
