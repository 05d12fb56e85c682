// The city's HTTP API, same origin. Errors carry the API's stable code (branch on it).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = 'GET', body, timeoutMs = 60_000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let reply;
  try {
    reply = await fetch(path, {
      method,
      headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json', accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, 'network', controller.signal.aborted ? 'the city API did not answer in time' : 'the city API is not reachable');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await reply.json();
  } catch {
    data = null;
  }
  if (!reply.ok) {
    const error = data && data.error;
    throw new ApiError(reply.status, error?.code ?? 'http.error', error?.message ?? `the API answered ${reply.status}`);
  }
  return data;
}

export const explain = (error) => (error instanceof ApiError ? `${error.message} (${error.code})` : String(error?.message || error));

/** What a ballot's relay status means, in words (GET /ballots/{hash}). */
export function ballotStatusText(answer) {
  const block = answer.receipt?.blockNumber;
  return {
    accepted: 'accepted by the relay, waiting to be sent to the chain',
    sent: 'sent to the chain, waiting for a block',
    confirmed: `on chain in block ${block}`,
    rejected: `refused by the chain (${answer.reason})`,
    failed: `not sent (${answer.reason})`,
  }[answer.status] || answer.status;
}
