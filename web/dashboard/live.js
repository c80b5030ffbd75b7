// One GraphQL subscription over WebSocket with the graphql-transport-ws protocol, in plain JS,
// that reconnects by itself: 1 s, 2 s, 4 s, 8 s, then every 10 s, re-subscribing each time.

const PROTOCOL = "graphql-transport-ws";
const REFUSED = 4403; // the server's close code for a token it does not accept
const MAX_DELAY_MS = 10_000;

export function backoff(attempt) {
  return Math.min(1000 * 2 ** (attempt - 1), MAX_DELAY_MS);
}

/**
 * subscribe({token, query, variables, onData, onState}) -> {close()}
 * onData(data) for every `next`; onState({state, ...}) with state one of:
 *   "connecting", "live", "reconnecting" ({attempt, delay} while waiting, {attempt} while trying),
 *   "completed" (the server ended the subscription: the delivery is over; not an error),
 *   "error" ({message}: the server rejected the subscription), "refused" (close 4403:
 *   {wasLive, reason}; wasLive: the token worked on this socket, then was revoked or replaced).
 */
export function subscribe({ token, query, variables, onData, onState }) {
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
  const id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random());
  let socket = null;
  let timer = null;
  let attempt = 0;
  let over = false; // closed by us, completed, rejected: never reconnect
  let acknowledged = false; // the server took the token on the current socket

  const send = (message) => socket && socket.readyState === WebSocket.OPEN
    && socket.send(JSON.stringify(message));

  function connect() {
    onState(attempt ? { state: "reconnecting", attempt } : { state: "connecting" });
    const ws = new WebSocket(url, PROTOCOL);
    socket = ws;
    acknowledged = false;
    ws.onopen = () => send({
      type: "connection_init",
      payload: { Authorization: `Bearer ${token}` },
    });
    ws.onmessage = (event) => {
      if (ws !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      switch (message.type) {
        case "connection_ack":
          attempt = 0;
          acknowledged = true;
          send({ id, type: "subscribe", payload: { query, variables } });
          onState({ state: "live" });
          break;
        case "ping":
          send({ type: "pong", ...(message.payload ? { payload: message.payload } : {}) });
          break;
        case "next":
          if (message.id !== id) break;
          if (message.payload && message.payload.errors && message.payload.errors.length) {
            onState({ state: "error", message: errorText(message.payload.errors) });
          } else if (message.payload && message.payload.data) {
            onData(message.payload.data);
          }
          break;
        case "error":
          if (message.id !== id) break;
          over = true;
          onState({ state: "error", message: errorText(message.payload) });
          ws.close(1000);
          break;
        case "complete":
          if (message.id !== id) break;
          over = true;
          onState({ state: "completed" });
          ws.close(1000);
          break;
        default:
          break;
      }
    };
    ws.onclose = (event) => {
      if (ws !== socket || over) return;
      if (event.code === REFUSED) {
        over = true;
        onState({ state: "refused", wasLive: acknowledged, reason: event.reason || "" });
        return;
      }
      attempt += 1;
      const delay = backoff(attempt);
      onState({ state: "reconnecting", attempt, delay, code: event.code });
      timer = setTimeout(connect, delay);
    };
  }

  connect();
  return {
    close() {
      over = true;
      clearTimeout(timer);
      if (socket && socket.readyState === WebSocket.OPEN) {
        send({ id, type: "complete" });
        socket.close(1000);
      } else if (socket && socket.readyState === WebSocket.CONNECTING) {
        socket.close();
      }
      socket = null;
    },
  };
}

function errorText(errors) {
  const list = Array.isArray(errors) ? errors : [errors];
  return list.map((e) => {
    const code = e && e.extensions && e.extensions.code;
    return code ? `${code}: ${e.message}` : String(e && e.message);
  }).join("; ");
}
