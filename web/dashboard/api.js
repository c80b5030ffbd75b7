// GraphQL over HTTP (POST /graphql with the bearer token) and its errors, as the page shows them.

export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code || null;
  }

  /** "CODE: message", what the page shows when a call fails. */
  get text() {
    return this.code ? `${this.code}: ${this.message}` : this.message;
  }
}

/** Run a query or mutation; resolves to `data`, rejects with an ApiError (first GraphQL error,
 *  or the HTTP / network failure). */
export async function gql(token, query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new ApiError(`The server could not be reached (${error.message}).`, "NETWORK");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${response.status} without JSON.`, "HTTP");
  }
  if (body && Array.isArray(body.errors) && body.errors.length) {
    const first = body.errors[0];
    throw new ApiError(String(first.message), first.extensions && first.extensions.code);
  }
  if (!response.ok || !body || !body.data) {
    const message = body && body.error ? body.error : `HTTP ${response.status}`;
    throw new ApiError(`The server refused the request: ${message}`, "HTTP");
  }
  return body.data;
}
