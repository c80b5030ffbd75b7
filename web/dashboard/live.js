// One GraphQL subscription over WebSocket through the official `graphql-ws` client (its UMD
// build, /dashboard/vendor/graphql-ws.min.js, sets `window.graphqlWs`): the protocol
// (connection_init, ack, ping/pong, subscribe, complete) is the library's, not ours. What is
// ours is the policy: reconnect by itself after 1 s, 2 s, 4 s, 8 s, then every 10 s, re-subscribing
// each time, except when the server closes with 4403 (a token it does not accept).

const REFUSED = 4403; // the server's close code for a token it does not accept
const MAX_DELAY_MS = 10_000;

export function backoff(attempt) {
  return Math.min(1000 * 2 ** (attempt - 1), MAX_DELAY_MS);
}

const isClose = (value) => Boolean(value) && typeof value.code === "number" && "reason" in value;

/**
 * subscribe({token, query, variables, onData, onState}) -> {close()}
 * onData(data) for every `next`; onState({state, ...}) with state one of:
 *   "connecting", "live", "reconnecting" ({attempt, delay} while waiting, {attempt} while trying),
 *   "completed" (the server ended the subscription: the delivery is over; not an error),
 *   "error" ({message}: the server rejected the subscription, or the client is not installed),
 *   "refused" (close 4403: {wasLive, reason}; wasLive: the token worked on this socket, then was
 *   revoked or replaced).
 */
export function subscribe({ token, query, variables, onData, onState }) {
  const graphqlWs = window.graphqlWs;
  if (!graphqlWs || typeof graphqlWs.createClient !== "function") {
    onState({
      state: "error",
      message: "the graphql-ws client did not load (/dashboard/vendor/graphql-ws.min.js): "
        + "run `npm ci --prefix web` on the server",
    });
    return { close() {} };
  }
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
  let over = false; // closed by us, completed, rejected: report nothing more
  let acknowledged = false; // the server took the token on the current socket
  let lastClose = null; // {code, reason, wasLive} of the socket that closed last
  let attempt = 0;
  const report = (s) => { if (!over) onState(s); };

  const client = graphqlWs.createClient({
    url,
    connectionParams: { Authorization: `Bearer ${token}` },
    lazy: true,
    lazyCloseTimeout: 0,
    retryAttempts: Infinity,
    // A socket that could not open fires `error` before `close`: retry that too (the default
    // takes it as fatal); only the server's 4403 is final.
    shouldRetry: (event) => !(isClose(event) && event.code === REFUSED),
    retryWait: (retries) => {
      attempt = retries + 1;
      const delay = backoff(attempt);
      report({ state: "reconnecting", attempt, delay, code: lastClose && lastClose.code });
      return new Promise((resolve) => { setTimeout(resolve, delay); });
    },
    on: {
      connecting: () => {
        acknowledged = false;
        report(attempt ? { state: "reconnecting", attempt } : { state: "connecting" });
      },
      connected: () => {
        acknowledged = true;
        attempt = 0;
        report({ state: "live" });
      },
      closed: (event) => {
        lastClose = isClose(event)
          ? { code: event.code, reason: event.reason || "", wasLive: acknowledged }
          : null;
        acknowledged = false;
      },
    },
  });

  const unsubscribe = client.subscribe({ query, variables }, {
    next: (result) => {
      if (over) return;
      if (result.errors && result.errors.length) {
        onState({ state: "error", message: errorText(result.errors) });
      } else if (result.data) {
        onData(result.data);
      }
    },
    error: (error) => {
      if (over) return;
      if (isClose(error) && error.code === REFUSED) {
        onState({
          state: "refused",
          wasLive: Boolean(lastClose && lastClose.wasLive),
          reason: error.reason || "",
        });
      } else {
        onState({ state: "error", message: errorText(error) });
      }
      over = true;
      client.dispose();
    },
    complete: () => {
      if (over) return;
      over = true;
      onState({ state: "completed" });
      client.dispose();
    },
  });

  return {
    close() {
      if (over) return;
      over = true;
      unsubscribe(); // sends `complete` when subscribed
      client.dispose();
    },
  };
}

function errorText(errors) {
  if (isClose(errors)) return `WebSocket closed ${errors.code} ${errors.reason || ""}`.trim();
  const list = Array.isArray(errors) ? errors : [errors];
  return list.map((e) => {
    const code = e && e.extensions && e.extensions.code;
    return code ? `${code}: ${e.message}` : String(e && e.message);
  }).join("; ");
}
