// The city's HTTP API, same origin. Errors carry the API's stable code (branch on it).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** One request; `body` is sent as JSON (or `text`, JSON already serialised). */
export async function api(path, { method = 'GET', body, text, timeoutMs = 60_000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const payload = text ?? (body === undefined ? undefined : JSON.stringify(body));
  let reply;
  try {
    reply = await fetch(path, {
      method,
      headers:
        payload === undefined
          ? { accept: 'application/json' }
          : { 'content-type': 'application/json', accept: 'application/json' },
      body: payload,
      signal: controller.signal,
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(
      0,
      'network',
      controller.signal.aborted ? 'the city API did not answer in time' : 'the city API is not reachable',
    );
  } finally {
    clearTimeout(timer);
  }
  const data = await reply.json().catch(() => null);
  if (!reply.ok) {
    const error = data && data.error;
    throw new ApiError(reply.status, error?.code ?? 'http.error', error?.message ?? `the API answered ${reply.status}`);
  }
  return data;
}

/**
 * POST `body` and, while its answer is lost (a network error, a timeout, a 5xx), the same bytes
 * again: at most `attempts` in all, never past `deadlineMs`, pausing a random 0..min(maxDelayMs,
 * firstDelayMs·2^n) ms between ("full jitter"). Only for the requests the API answers
 * idempotently — a token request, a ballot (docs/protocol.md, API) — as the Python SDK does.
 */
export async function postRetrying(
  path,
  body,
  { attempts = 8, deadlineMs = 60_000, firstDelayMs = 250, maxDelayMs = 8_000 } = {},
) {
  const text = JSON.stringify(body);
  const giveUp = Date.now() + deadlineMs;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await api(path, { method: 'POST', text, timeoutMs: Math.max(1, Math.min(60_000, giveUp - Date.now())) });
    } catch (error) {
      const lost = error instanceof ApiError && (error.status === 0 || error.status >= 500);
      const pause = Math.random() * Math.min(maxDelayMs, firstDelayMs * 2 ** attempt);
      if (!lost || attempt + 1 >= attempts || Date.now() + pause >= giveUp) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

export const explain = (error) =>
  error instanceof ApiError ? `${error.message} (${error.code})` : String(error?.message || error);

/** What a ballot's relay status means, in words (GET /ballots/{hash}). */
export function ballotStatusText(answer) {
  const block = answer.receipt?.blockNumber;
  return (
    {
      accepted: 'accepted by the relay, waiting to be sent to the chain',
      sent: 'sent to the chain, waiting for a block',
      confirmed: `on chain in block ${block}`,
      rejected: `refused by the chain (${answer.reason})`,
      failed: `not sent (${answer.reason})`,
    }[answer.status] || answer.status
  );
}
