// The public results page: every poll with its status; after publication a bar chart per option
// and per stratum, the dataset, the verifier's command line; and a receipt checker.

import { api, ballotStatusText, explain } from './api.js';
import { checkReceipt, normaliseShortCode, shortCode } from './protocol.js';
import { el, readFileText, replace, short, when } from './ui.js';

const STATUS_TEXT = {
  scheduled: 'Not open yet',
  open: 'Open — no interim results: ballots stay sealed until it closes',
  closed: 'Closed — waiting for the trustees to release the key and for publication',
  published: 'Published',
};

function bars(options, counts, testid) {
  const total = counts.reduce((a, b) => a + b, 0);
  const top = Math.max(...counts, 0);
  return el(
    'div',
    { class: 'bars', role: 'list', 'data-testid': testid },
    options.map((option, i) => {
      const fill = el('div', { class: 'bar-fill' });
      fill.style.setProperty('width', `${top ? (100 * counts[i]) / top : 0}%`);
      const percent = total ? Math.round((1000 * counts[i]) / total) / 10 : 0;
      return el(
        'div',
        {
          class: `bar-row${counts[i] === top && top > 0 ? ' leader' : ''}`,
          role: 'listitem',
          'data-option': i,
          'data-count': counts[i],
        },
        el('span', { class: 'bar-label' }, option),
        el('div', { class: 'bar-track', 'aria-hidden': 'true' }, fill),
        el('span', { class: 'bar-value' }, `${counts[i]} · ${percent}%`),
      );
    }),
  );
}

function verifierCommand(pollId) {
  return [
    `curl -s ${location.origin}/deployment -o deployment.json`,
    `curl -s ${location.origin}/polls/${pollId}/dataset.csv -o poll-${pollId}.csv`,
    `veche-verify --rpc http://YOUR-NODE:8545 --deployment deployment.json poll ${pollId} --dataset poll-${pollId}.csv`,
  ].join('\n');
}

// What the dataset keeps, said as it is: every stratum is shown (none was too small to show: the
// city merged small districts with a neighbour when it made the poll), and what a stratum reveals.
function strataNote(poll, strata) {
  const least = poll.minStratum > 0 ? ` of at least ${poll.minStratum} eligible residents` : '';
  const counted =
    strata > 1
      ? `The ballots are counted in ${strata} strata${least} each, all shown.`
      : `The ballots are counted in one stratum${least}.`;
  const merged = poll.minStratum > 0 ? ' Smaller districts were merged with a neighbour before the poll opened.' : '';
  return el(
    'p',
    { class: 'muted small', 'data-testid': 'strata-note' },
    counted + merged,
    " The dataset lists each ballot's stratum beside its choice: a stratum narrows its voter to the stratum's registered residents, and the points ledger shows which of them took part.",
  );
}

async function pollCard(poll) {
  const card = el('article', { class: 'card', 'data-testid': `result-${poll.id}`, 'data-status': poll.status });
  const head = [
    el(
      'div',
      { class: 'spread' },
      el('h2', {}, poll.question),
      el('span', { class: `badge ${poll.status}`, 'data-testid': 'status' }, poll.status),
    ),
    el(
      'p',
      { class: 'muted small' },
      `Poll ${poll.id} · ${STATUS_TEXT[poll.status] || poll.status} · voting ${when(poll.opensAt)} – ${when(poll.closesAt)}`,
      poll.maxChoices > 1 ? ` · up to ${poll.maxChoices} choices each` : '',
    ),
  ];
  if (poll.status !== 'published') {
    return replace(
      card,
      head,
      el(
        'ul',
        { class: 'small muted' },
        poll.options.map((o) => el('li', {}, o)),
      ),
    );
  }
  let result;
  try {
    result = await api(`/polls/${poll.id}/results`);
  } catch (error) {
    return replace(card, head, el('p', { class: 'notice error' }, `The result could not be loaded: ${explain(error)}`));
  }
  return replace(
    card,
    head,
    el(
      'p',
      {},
      el('strong', { 'data-testid': 'ballots-counted' }, String(result.ballotsCounted)),
      result.ballotsCounted === 1 ? ' ballot counted' : ' ballots counted',
    ),
    bars(poll.options, result.counts, 'option-bars'),
    result.perStratum.length > 1
      ? el(
          'details',
          { open: true },
          el('summary', {}, 'By stratum'),
          el(
            'div',
            { class: 'districts', 'data-testid': 'stratum-bars' },
            result.perStratum.map((s) =>
              el(
                'div',
                { class: 'district' },
                el(
                  'div',
                  { class: 'spread small' },
                  el('strong', { 'data-testid': 'stratum-name' }, s.name),
                  el(
                    'span',
                    { class: 'muted' },
                    `${s.ballots} ballot${s.ballots === 1 ? '' : 's'}`,
                    s.registerSize === null ? '' : ` of ${s.registerSize} registered`,
                  ),
                ),
                bars(poll.options, s.counts, `counts-${s.stratum}`),
              ),
            ),
          ),
        )
      : null,
    strataNote(poll, result.perStratum.length),
    el(
      'div',
      { class: 'links' },
      el(
        'a',
        { href: `/polls/${poll.id}/dataset.csv`, download: `poll-${poll.id}.csv`, 'data-testid': 'dataset-csv' },
        'Anonymised dataset (CSV)',
      ),
      el('a', { href: `/polls/${poll.id}/dataset.json`, download: `poll-${poll.id}.json` }, 'JSON'),
      el('a', { href: '/deployment', download: 'deployment.json' }, 'Deployment file'),
    ),
    el(
      'details',
      {},
      el('summary', {}, 'Check this count yourself'),
      el(
        'p',
        { class: 'small' },
        'The verifier recounts every ballot from the chain alone, checks every signature and rule by number, and compares with this result and its dataset:',
      ),
      el('pre', { class: 'cmd', 'data-testid': 'verify-command' }, verifierCommand(poll.id)),
      el(
        'p',
        { class: 'small muted' },
        `Dataset hash ${short(result.datasetHash, 18)}`,
        result.transactionHash ? ` · published in transaction ${short(result.transactionHash, 18)}` : '',
      ),
    ),
  );
}

function checker() {
  const out = el('div', {
    class: 'check-result',
    role: 'status',
    'aria-live': 'polite',
    'data-testid': 'check-result',
  });
  const code = el('input', {
    type: 'text',
    placeholder: 'e.g. 1a2b-3c4d-5e6f',
    autocomplete: 'off',
    spellcheck: 'false',
    'data-testid': 'check-code',
    'aria-label': 'Receipt code or ballot hash',
  });
  const file = el('input', {
    type: 'file',
    accept: '.json,application/json',
    'data-testid': 'check-file',
    'aria-label': 'Receipt file',
  });

  async function show(hashes, receipt) {
    const lines = [];
    for (const hash of hashes) {
      try {
        const answer = await api(`/ballots/${hash}`);
        const ok = answer.status === 'confirmed';
        lines.push(
          el(
            'p',
            {
              class: `notice ${ok ? 'ok' : answer.status === 'rejected' || answer.status === 'failed' ? 'error' : ''}`,
              'data-testid': 'check-status',
              'data-status': answer.status,
            },
            `Ballot ${short(hash, 14)}: ${ballotStatusText(answer)}.`,
            ok && answer.receipt.transactionHash
              ? el('span', { class: 'small' }, ` Transaction ${short(answer.receipt.transactionHash, 14)}.`)
              : null,
          ),
        );
      } catch (error) {
        lines.push(
          el(
            'p',
            { class: 'notice error', 'data-testid': 'check-status', 'data-status': 'unknown' },
            `Ballot ${short(hash, 14)}: ${explain(error)}`,
          ),
        );
      }
    }
    if (receipt) {
      const problems = checkReceipt(receipt);
      lines.push(
        el(
          'p',
          { class: `notice ${problems.length ? 'error' : 'ok'}`, 'data-testid': 'check-signature' },
          problems.length
            ? `The receipt does not check out: ${problems.join('; ')}.`
            : `The receipt is signed by the relay ${short(receipt.relayer, 12)} (signature checked in your browser).`,
        ),
      );
    }
    lines.push(
      el(
        'p',
        { class: 'small muted' },
        'If you changed your vote, only your last ballot counts. To check against the chain yourself: ',
        el('code', {}, 'veche-verify --rpc … --deployment deployment.json receipt my-receipt.json'),
      ),
    );
    replace(out, lines);
  }

  const byCode = el(
    'form',
    {
      class: 'stack',
      onsubmit: async (event) => {
        event.preventDefault();
        const text = code.value.trim().toLowerCase();
        replace(out, el('p', { class: 'muted' }, 'Checking…'));
        if (/^(0x)?[0-9a-f]{64}$/.test(text)) return show([text.startsWith('0x') ? text : `0x${text}`]);
        const digits = normaliseShortCode(text);
        if (!digits)
          return replace(
            out,
            el(
              'p',
              { class: 'notice error', 'data-testid': 'check-status' },
              'A receipt code has 12 letters and digits, like 1a2b-3c4d-5e6f.',
            ),
          );
        try {
          const found = await api(`/receipt-codes/${digits}`);
          await show(found.ballotHashes);
        } catch (error) {
          replace(
            out,
            el('p', { class: 'notice error', 'data-testid': 'check-status', 'data-status': 'unknown' }, explain(error)),
          );
        }
      },
    },
    el('label', { class: 'field' }, 'Receipt code (or ballot hash)', code),
    el(
      'div',
      { class: 'row' },
      el('button', { class: 'primary', type: 'submit', 'data-testid': 'check-code-button' }, 'Check'),
    ),
  );

  file.addEventListener('change', async () => {
    if (!file.files.length) return;
    let receipt;
    try {
      receipt = JSON.parse(await readFileText(file.files[0]));
      if (!/^0x[0-9a-fA-F]{64}$/.test(receipt.ballotHash)) throw new Error('no ballot hash');
    } catch {
      return replace(
        out,
        el('p', { class: 'notice error', 'data-testid': 'check-status' }, 'This file is not a Veche receipt.'),
      );
    }
    code.value = shortCode(receipt.ballotHash);
    replace(out, el('p', { class: 'muted' }, 'Checking…'));
    await show([receipt.ballotHash.toLowerCase()], receipt);
  });

  return el(
    'section',
    { class: 'card stack', id: 'check', 'aria-labelledby': 'check-title' },
    el(
      'div',
      {},
      el('h2', { id: 'check-title' }, 'Check your receipt'),
      el('p', { class: 'small' }, 'Type the code you got when you voted, or open the receipt file you downloaded.'),
    ),
    byCode,
    el('label', { class: 'field' }, 'Or your receipt file', file),
    out,
  );
}

function verifierHowTo() {
  return el(
    'section',
    { class: 'card', 'aria-labelledby': 'verify-title' },
    el('h2', { id: 'verify-title' }, "Don't take our word for it"),
    el(
      'p',
      { class: 'small' },
      'Anyone can recount every poll from the blockchain with the verifier, pointed at a node they run themselves:',
    ),
    el(
      'pre',
      { class: 'cmd' },
      [
        'python3 -m venv observer',
        'observer/bin/pip install ./verifier     # from the Veche sources',
        `curl -s ${location.origin}/deployment -o deployment.json`,
        'observer/bin/veche-verify --rpc http://YOUR-NODE:8545 \\',
        '    --deployment deployment.json all',
      ].join('\n'),
    ),
    el(
      'p',
      { class: 'small muted' },
      'It prints numbered checks, the recomputed and the published tally side by side, and exits non-zero if anything fails.',
    ),
  );
}

async function main() {
  const app = document.getElementById('app');
  const list = el('div', { class: 'stack', 'data-testid': 'polls' }, el('p', { class: 'muted' }, 'Loading the polls…'));
  replace(
    app,
    el('h1', {}, 'Poll results'),
    el('div', { class: 'layout' }, list, el('aside', {}, checker(), verifierHowTo())),
  );
  try {
    const polls = (await api('/polls?include_closed=true')).slice().reverse();
    replace(list, polls.length ? await Promise.all(polls.map(pollCard)) : el('p', { class: 'muted' }, 'No polls yet.'));
  } catch (error) {
    replace(list, el('p', { class: 'notice error' }, `The polls could not be loaded: ${explain(error)}`));
  }
  if (location.hash === '#check') document.getElementById('check').scrollIntoView();
  document.body.dataset.ready = 'true';
}

main();
