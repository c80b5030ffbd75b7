// The official graphql-ws client (web/node_modules) against the server, for tests/api/live/test_ws_protocol.py.
// Subscribes to deploymentProgress(DELIVERY_ID) at WS_URL with TOKEN and prints one JSON line:
// {"next": <first payload>} or {"closed": {"code", "reason"}} when the server closes the socket.
// Run with `node --experimental-websocket` on node 20 (node 22 has WebSocket built in).
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web", "package.json");
const { createClient } = await import(
  pathToFileURL(createRequire(web).resolve("graphql-ws")).href
);

const { WS_URL, TOKEN, DELIVERY_ID } = process.env;
const print = (result) => process.stdout.write(JSON.stringify(result) + "\n");

let closedWith = null;
const client = createClient({
  url: WS_URL,
  connectionParams: { Authorization: `Bearer ${TOKEN}` },
  retryAttempts: 0, // report the first close as it is
  on: { closed: (event) => (closedWith = { code: event.code, reason: event.reason }) },
});

const timer = setTimeout(() => {
  print({ timeout: true });
  process.exit(1);
}, 15000);

await new Promise((resolve) => {
  const dispose = client.subscribe(
    {
      query: "subscription($id: ID!) { deploymentProgress(deliveryId: $id) { status } }",
      variables: { id: DELIVERY_ID },
    },
    {
      next: (payload) => {
        print({ next: payload });
        dispose();
        resolve();
      },
      error: (error) => {
        print(closedWith ? { closed: closedWith } : { error: String(error?.message ?? error) });
        resolve();
      },
      complete: resolve,
    },
  );
});
clearTimeout(timer);
await client.dispose();
