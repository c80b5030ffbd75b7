// A single-page app's data layer, without the page: urql with graphcache (its normalised cache)
// over HTTP and the graphql-ws client over WebSocket, as a front end would set them up. Driven by
// tests/api/live/test_spa_client.py, which prepares the server and checks what this prints.
//
// Env: GRAPHQL_URL, WS_URL, TOKEN, LABEL (the delivery to open). Prints one JSON report:
//   listed (ids), filtered (ids of READY or DRAFT deliveries whose label has "spring"),
//   opened (the delivery as first read),
//   seen (the open screen's delivery each time the cache pushed it), progress (snapshots
//   received), completed (the subscription ended), final (the cached delivery at the end),
//   requests (every HTTP operation, in order), or {error} and exit code 1.
// Run with `node --experimental-websocket` on node 20 (node 22 has WebSocket built in).
import { Client, fetchExchange, gql, subscriptionExchange } from "@urql/core";
import { cacheExchange } from "@urql/exchange-graphcache";
import { createClient as createWsClient } from "graphql-ws";
import { onEnd, pipe, subscribe } from "wonka";

const { GRAPHQL_URL, WS_URL, TOKEN, LABEL } = process.env;
const TIMEOUT_MS = 60_000;

const report = { requests: [], seen: [], progress: 0, completed: false };
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const fail = (message) => {
  print({ ...report, error: message });
  process.exit(1);
};
setTimeout(() => fail(`timed out after ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS).unref();

// Every HTTP request the client makes, by operation name: "without a refetch" is checked on it.
// urql sends queries as GET (its default within the URL's length limit), mutations as POST.
const countingFetch = (url, init) => {
  const name = init.body
    ? JSON.parse(init.body).operationName
    : new URL(url).searchParams.get("operationName");
  report.requests.push(`${init.method || "GET"} ${name}`);
  return fetch(url, init);
};

const ws = createWsClient({
  url: WS_URL,
  connectionParams: { Authorization: `Bearer ${TOKEN}` },
  retryAttempts: 0,
});

// Every object has an id (graphcache keys it by __typename + id) except pages: they are
// embedded in their parent, and graphcache is told so instead of warning about missing keys.
const embedded = () => null;
const client = new Client({
  url: GRAPHQL_URL,
  fetch: countingFetch,
  fetchOptions: () => ({ headers: { Authorization: `Bearer ${TOKEN}` } }),
  exchanges: [
    cacheExchange({
      keys: {
        DeliveryConnection: embedded,
        DeliveryEdge: embedded,
        PageInfo: embedded,
      },
    }),
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query || "" }, sink) }),
      }),
    }),
  ],
});

const SCREEN = gql`
  fragment Screen on Delivery {
    id label status version allowedActions
    kpis { id toSend processed sent pending failed deliveredRate bouncesAndErrorsRate openRate
      clickThroughRate }
  }
`;
const DELIVERIES = gql`
  query Deliveries($statuses: [DeliveryStatus!], $search: String) {
    deliveries(first: 50, statuses: $statuses, search: $search) {
      totalCount edges { node { id label status } }
    }
  }
`;
const OPEN = gql`query OpenDelivery($id: ID!) { delivery(id: $id) { ...Screen } } ${SCREEN}`;
const PROGRESS = gql`
  subscription Progress($id: ID!) {
    deploymentProgress(deliveryId: $id) { id status at delivery { ...Screen } }
  }
  ${SCREEN}
`;
const CONFIRM = gql`
  mutation Confirm($id: ID!, $version: Int) {
    confirmSend(deliveryId: $id, version: $version) { ...Screen }
  }
  ${SCREEN}
`;

async function once(operation) {
  const result = await operation.toPromise();
  if (result.error) fail(`${result.operation.kind}: ${result.error.message}`);
  return result.data;
}

// 1. The list, then the list filtered by statuses and a part of the label.
const all = (await once(client.query(DELIVERIES, {}))).deliveries;
report.listed = all.edges.map((e) => e.node.id);
const found = (await once(client.query(DELIVERIES, {
  statuses: ["READY", "DRAFT"], search: "spring",
}))).deliveries;
report.filtered = found.edges.map((e) => e.node.id);
const chosen = found.edges.find((e) => e.node.label === LABEL);
if (!chosen) fail(`no delivery labelled ${LABEL} among those found`);
const id = chosen.node.id;

// 2. Open it: one query the screen keeps watching; the cache pushes every change to it.
let screen = null;
let finished = null;
const whenFinished = new Promise((resolve) => { finished = resolve; });
pipe(
  client.query(OPEN, { id }, { requestPolicy: "cache-first" }),
  subscribe((result) => {
    if (result.error) fail(`OpenDelivery: ${result.error.message}`);
    const d = result.data && result.data.delivery;
    if (!d) return;
    screen = d;
    report.seen.push({
      status: d.status, processed: d.kpis.processed, allowedActions: d.allowedActions,
    });
    if (d.status === "FINISHED") finished();
  }),
);
while (!screen) await new Promise((resolve) => setTimeout(resolve, 10));
report.opened = screen;

// 3. Subscribe to its progress; the snapshots go through the cache, nowhere else.
let ended = null;
const whenEnded = new Promise((resolve) => { ended = resolve; });
let live = null;
const whenLive = new Promise((resolve) => { live = resolve; });
const offConnected = ws.on("connected", () => live());
pipe(
  client.subscription(PROGRESS, { id }),
  onEnd(() => { report.completed = true; ended(); }),
  subscribe((result) => {
    if (result.error) fail(`Progress: ${result.error.message}`);
    report.progress += 1;
  }),
);
await whenLive;
offConnected();

// 4. Confirm the version the screen shows.
await once(client.mutation(CONFIRM, { id, version: screen.version }));

// 5. The watched delivery follows the subscription to FINISHED, with no query sent again.
await whenFinished;
await whenEnded;
report.final = screen;
print(report);
ws.dispose();
process.exit(0);
