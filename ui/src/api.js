// The page is a client of the REST API, nothing more: every action is a request the CLI
// or curl could make, with the same token and the same checks. The token lives in
// sessionStorage (this tab, this session), never in a URL.

const TOKEN = "jobyard.token";
const ORG = "jobyard.org";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error_desc) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function session() {
  return { token: sessionStorage.getItem(TOKEN), org: sessionStorage.getItem(ORG) };
}

export function signedIn() {
  return Boolean(session().token);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(ORG);
}

async function parse(response) {
  const type = response.headers.get("Content-Type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    if (response.status === 401) {
      signOut();
      window.location.hash = "#/login";
    }
    throw new ApiError(response.status, body);
  }
  return body;
}

export async function signIn(org, key) {
  const response = await fetch("/api/v2/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ngc_key: key, ngc_org_name: org }),
  });
  const body = await response.json();
  if (!response.ok) throw new ApiError(response.status, body);
  sessionStorage.setItem(TOKEN, body.token);
  sessionStorage.setItem(ORG, org);
  return body;
}

function request(method, path, body, params) {
  const { token, org } = session();
  const query = params ? `?${new URLSearchParams(params)}` : "";
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(`/api/v2/orgs/${encodeURIComponent(org)}/${path}${query}`, init);
}

export async function call(method, path, body, params) {
  return parse(await request(method, path, body, params));
}

export const get = (path, params) => call("GET", path, undefined, params);

// A job's log from a byte offset: the text and where to continue.
export async function logs(jobId, offset) {
  const response = await request("GET", `jobs/${jobId}:logs`, undefined, { offset });
  const text = await parse(response);
  return { text, next: Number(response.headers.get("X-Next-Offset") || offset) };
}

// The job's results as a file the browser saves (the request carries the token, so a
// plain link cannot do it).
export async function download(jobId) {
  const response = await request("GET", `jobs/${jobId}:download`);
  if (!response.ok) await parse(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `${jobId}.tar.gz`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
