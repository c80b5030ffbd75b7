/*
 * GraphiQL for this server, with no build step and nothing from a CDN (see docs/graphiql.md).
 *
 * The token typed in the bar above GraphiQL (kept in sessionStorage: this tab only) is sent as
 * `Authorization: Bearer …` on every HTTP request and as {"Authorization": "Bearer …"} in the
 * WebSocket's `connection_init` (graphql-transport-ws). Headers typed in GraphiQL's Headers tab
 * are sent too, and win over the bar. A subscription the server refuses (close 4403: wrong or
 * missing token) or a lost connection is shown in the result pane as a GraphQL error saying so,
 * instead of an opaque CloseEvent after a minute of retries.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "graphiql:token";
  var FORBIDDEN = 4403;
  var CLOSE_REASONS = {
    4400: "the server could not read a message",
    4403: "the server refused the token: it is wrong or missing (set it in the bar above)",
    4406: "the server does not speak this subscription protocol",
    4408: "the connection was not initialised in time",
    4500: "the server failed",
    1006: "the connection to the server was lost",
  };

  // GraphiQL's dialogs insert a <style> element at run time; it carries this page's CSP nonce.
  var nonce = document.currentScript && document.currentScript.nonce;
  if (nonce) window.__webpack_nonce__ = nonce;

  var httpUrl = new URL(window.location.pathname, window.location.href).href;
  var wsUrl = httpUrl.replace(/^http/, "ws");

  function token() {
    return window.sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function auth() {
    return token() ? { Authorization: "Bearer " + token() } : {};
  }

  function closeError(event) {
    var why = CLOSE_REASONS[event.code] || "the connection closed";
    var reason = event.reason ? " " + event.reason : "";
    return {
      message: "Subscription stopped: " + why + " (WebSocket close " + event.code + reason + ").",
      extensions: {
        code: event.code === FORBIDDEN ? "UNAUTHENTICATED" : "CONNECTION_CLOSED",
        closeCode: event.code,
      },
    };
  }

  function asGraphQLError(error) {
    if (error && typeof error.code === "number" && "reason" in error) return closeError(error);
    // GraphiQL's stream turns a CloseEvent into Error("Socket closed with event 4403 Forbidden").
    var closed = /closed with event (\d+)\s*(.*)$/.exec((error && error.message) || "");
    if (closed) return closeError({ code: Number(closed[1]), reason: closed[2] });
    if (Array.isArray(error)) return error[0] || { message: "Subscription failed." };
    return { message: "Subscription failed: " + ((error && error.message) || String(error)) };
  }

  // Yields what the stream yields; an error at any point becomes a last GraphQL-shaped result.
  async function* explained(iterable) {
    try {
      for await (var value of iterable) yield value;
    } catch (error) {
      yield { errors: [asGraphQLError(error)] };
    }
  }

  function wsClient(headers) {
    return window.graphqlWs.createClient({
      url: wsUrl,
      connectionParams: Object.assign({}, auth(), headers),
      retryAttempts: 3,
      // A refused token stays refused: report it now rather than after a minute of retries.
      shouldRetry: function (event) {
        return !(event && event.code === FORBIDDEN);
      },
    });
  }

  // GraphiQL decides "subscription, so WebSocket" from the editor's parsed document, which lags
  // behind fast typing (Ctrl-Enter right after a paste went over HTTP): parse what is sent.
  function parsed(query) {
    try {
      return window.GraphiQL.GraphQL.parse(query);
    } catch (error) {
      return undefined;
    }
  }

  function fetcher(params, opts) {
    var headers = (opts && opts.headers) || {};
    var documentAST = parsed(params.query) || (opts && opts.documentAST);
    opts = Object.assign({}, opts, { documentAST: documentAST });
    var call = window.GraphiQL.createFetcher({
      url: httpUrl,
      headers: auth(),
      wsClient: wsClient(headers),
    });
    return Promise.resolve(call(params, opts)).then(function (result) {
      return result && typeof result[Symbol.asyncIterator] === "function"
        ? explained(result)
        : result;
    });
  }

  var root = window.ReactDOM.createRoot(document.getElementById("graphiql"));
  var state = document.getElementById("token-state");
  var input = document.getElementById("token");

  function render() {
    state.textContent = token() ? "token set" : "no token: queries are refused";
    state.className = token() ? "set" : "unset";
    // A new fetcher per token: GraphiQL fetches the schema again with it.
    var current = function (params, opts) {
      return fetcher(params, opts);
    };
    root.render(
      window.React.createElement(window.GraphiQL, {
        fetcher: current,
        defaultQuery: "{\n  me {\n    name\n    roles\n  }\n}\n",
        isHeadersEditorEnabled: true,
        shouldPersistHeaders: false,
      })
    );
  }

  document.getElementById("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var value = input.value.trim().replace(/^bearer\s+/i, "");
    if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
    input.value = "";
    render();
  });
  document.getElementById("token-forget").addEventListener("click", function () {
    window.sessionStorage.removeItem(TOKEN_KEY);
    render();
  });

  render();
})();
