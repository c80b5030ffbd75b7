// Runs the graphql-http server audit (GraphQL over HTTP spec) against a live server and prints
// one JSON array on stdout: [{id, name, status, reason?, httpStatus?, body?}, ...].
// Usage: node tests/support/graphql_http_audit.mjs http://127.0.0.1:PORT/graphql [TOKEN]
// The server answers operators only (401 before anything else without a valid token): with
// TOKEN, every request of the audit carries `Authorization: Bearer TOKEN`.
// graphql-http is resolved from web/node_modules (npm ci --prefix web).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'web', 'package.json'));
const { auditServer } = require('graphql-http');

const url = process.argv[2];
const token = process.argv[3];
if (!url) {
  console.error('usage: node graphql_http_audit.mjs URL [TOKEN]');
  process.exit(2);
}

function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers || {});
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn });
const out = [];
for (const result of results) {
  const item = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    item.reason = result.reason;
    item.httpStatus = result.response.status;
    item.contentType = result.response.headers.get('content-type');
    try {
      item.body = (await result.response.text()).slice(0, 500);
    } catch {
      item.body = null; // the audit already read it
    }
  }
  out.push(item);
}
process.stdout.write(JSON.stringify(out));
