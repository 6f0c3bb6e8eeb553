// The server's public REST API as the studio uses it: where it is, the token, errors, and the
// change feed of every step. Same origin only: the page is served by the server it shows, at
// `{root}/studio/`, so a gateway or a proxy prefix in front of it needs nothing configured.

/** The path prefix in front of `/studio/` ("" on the embedded server, "/lo" behind a prefix). */
export const ROOT = location.pathname.replace(/\/studio(\/.*)?$/, "");
/** The API's base path. */
export const BASE = `${ROOT}/api/learningOrchestra/v1`;
/** The largest page `GET /steps` answers (docs/api.md, "Routes across step types"). */
export const PAGE = 100;

const TOKEN_KEY = "lo-token";

/** The API token of this tab (sessionStorage: gone with the tab, never in the URL). */
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled: no token
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token cannot be kept
  }
}

/** An answer that is not a success: `message` is the server's own one-line `result`. */
export class ApiError extends Error {
  constructor(status, message, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const unauthorizedListeners = new Set();

/** Call `listener()` whenever the server answers 401 (a token is missing or refused). */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

function headers(extra = {}) {
  const token = getToken();
  return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let code = null;
  try {
    const body = await response.json();
    if (body && typeof body.result === "string") message = body.result;
    code = body?.error?.code ?? null;
  } catch {
    // not LO's envelope (a proxy's page): keep the status line
  }
  if (response.status === 401) unauthorizedListeners.forEach((listener) => listener());
  return new ApiError(response.status, message, code);
}

/** fetch() of an API path with the token; an ApiError unless the answer is a success. */
export async function send(path, { method = "GET", body, signal, accept } = {}) {
  const init = {
    method,
    signal,
    headers: headers({
      Accept: accept || "application/json",
      ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
    }),
    body: body !== undefined ? JSON.stringify(body) : undefined,
  };
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the server cannot be reached");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** The JSON answer of an API call. */
export async function call(path, options) {
  return (await send(path, options)).json();
}

/** A binary answer as a Blob (plots, files): fetch with the token, as an <img> cannot. */
export async function blob(path, options) {
  return (await send(path, { accept: "*/*", ...options })).blob();
}

/** The API path of a step: `/{step}/{tool}/{name}`. */
export function stepPath(step) {
  return `/${step.type}/${encodeURIComponent(step.name)}`;
}

/** The server's OpenAPI document (outside the base path, no token), or null. */
export async function openapi() {
  try {
    const response = await fetch(`${ROOT}/openapi.json`, { headers: headers() });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/** Every step's metadata: `GET /steps` page by page. Pages overlap by a few steps, so a
 * step deleted meanwhile cannot shift another out of sight; the feed, followed from a cursor
 * taken before the first page, brings every change made while paging. */
export async function allSteps(onPage = () => {}) {
  const OVERLAP = 5;
  const steps = new Map();
  for (let skip = 0; ; ) {
    const page = (await call(`/steps?skip=${skip}&limit=${PAGE}`)).result;
    for (const step of page) steps.set(step.name, step);
    onPage(steps.size);
    if (page.length < PAGE) return [...steps.values()];
    skip += PAGE - OVERLAP;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class NotStreaming extends Error {}

/** Seconds to wait for a stream's headers, then for any byte of it (the server pings every
 * 10 s): a proxy that buffers streams (KrakenD CE) answers neither, and the feed polls. */
const HEADERS_TIMEOUT = 12_000;
const SILENCE_TIMEOUT = 35_000;
/** The long-poll's timeout, in seconds. */
const POLL_TIMEOUT = 30;

/**
 * The change feed of every step, over one connection: `GET /observe/*\/events?since=CURSOR`
 * read with fetch streaming (EventSource cannot send a token), or, where the answer does not
 * stream, the long-poll `GET /observe?since=CURSOR` in a loop. Reconnects with back-off and
 * resumes from the last cursor; a 410 (cursor too old) calls `onExpired`: start again.
 */
export class ChangeFeed {
  constructor(cursor, { onChanges, onState, onExpired }) {
    this.cursor = cursor;
    this.onChanges = onChanges;
    this.onState = onState;
    this.onExpired = onExpired;
    this.mode = "stream";
    this.controller = null;
    this.stopped = false;
  }

  start() {
    this.run();
    return this;
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  async run() {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (this.mode === "stream") await this.stream();
        else await this.poll();
        failures = 0;
      } catch (error) {
        if (this.stopped) return;
        if (error.status === 410) return this.onExpired();
        if (error.status === 401) return this.onState("unauthorized");
        // A proxy that buffers the stream, or does not route it at all (a 404, a 502): the
        // long-poll is the portable way, and the feed keeps to it from then on.
        if (error instanceof NotStreaming || (this.mode === "stream" && error.status >= 400)) {
          this.mode = "poll";
          continue;
        }
        failures += 1;
        this.onState("reconnecting", this.mode);
        await sleep(Math.min(1000 * 2 ** (failures - 1), 15_000));
      }
    }
  }

  /** One SSE connection, until it breaks (throws) or the feed stops. */
  async stream() {
    const controller = (this.controller = new AbortController());
    let reason = null;
    const abort = (why) => {
      reason = why;
      controller.abort();
    };
    let timer = setTimeout(() => abort(new NotStreaming()), HEADERS_TIMEOUT);
    const since = encodeURIComponent(this.cursor);
    let received = false;
    try {
      const response = await send(`/observe/*/events?since=${since}`, {
        signal: controller.signal,
        accept: "text/event-stream",
      });
      if (!(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
        throw new NotStreaming();
      }
      this.onState("live", "stream");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        clearTimeout(timer);
        timer = setTimeout(
          () => abort(received ? new Error("the stream went silent") : new NotStreaming()),
          SILENCE_TIMEOUT,
        );
        const { value, done } = await reader.read();
        if (done) throw new Error("the stream ended");
        received = true;
        buffer += value.replace(/\r\n?/g, "\n");
        const blocks = buffer.split("\n\n");
        buffer = blocks.pop();
        const changes = blocks.map((block) => this.event(block)).filter(Boolean);
        if (changes.length) this.onChanges(changes);
      }
    } catch (error) {
      throw reason && !this.stopped ? reason : error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A change of one SSE event block (`id:`, `event:`, `data:` lines), or null. */
  event(block) {
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon === 0) continue; // a comment: the keep-alive ping
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") this.cursor = value;
      else if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    const doc = JSON.parse(data.join("\n"));
    return kind === "deleted" ? { name: doc.name, deleted: true } : doc;
  }

  /** One long-poll of the feed. */
  async poll() {
    const controller = (this.controller = new AbortController());
    const timer = setTimeout(() => controller.abort(), (POLL_TIMEOUT + 15) * 1000);
    this.onState("live", "poll");
    try {
      const since = encodeURIComponent(this.cursor);
      const answer = await call(`/observe?since=${since}&timeout=${POLL_TIMEOUT}`, {
        signal: controller.signal,
      });
      this.cursor = answer.cursor;
      if (answer.result.length) this.onChanges(answer.result);
    } finally {
      clearTimeout(timer);
    }
  }
}
