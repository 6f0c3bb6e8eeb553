// The page's state: every step's latest metadata, kept current by the change feed, and the
// connection. One mutable store with a revision number; components re-render at most once a
// frame however many changes arrive (a 5,000-step pipeline sends bursts).

import { useEffect, useState } from "./ui.js";
import { ChangeFeed, allSteps, call, onUnauthorized } from "./api.js";

export const store = {
  /** name → metadata, in creation order (new steps are appended as the feed brings them). */
  steps: new Map(),
  /** Bumped on every change of `steps`; memoised views key on it. */
  revision: 0,
  /** connecting | live | reconnecting | unauthorized (also `document.body.dataset.feed`). */
  feed: "connecting",
  /** stream | poll: how the live feed is read. */
  feedMode: null,
  /** Steps read so far while loading (null once loaded). */
  loading: null,
  needToken: false,
  /** The polite announcement for screen readers (one at a time, never per feed event). */
  announcement: "",
  error: null,
};

const listeners = new Set();
let scheduled = false;

function notify() {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    listeners.forEach((listener) => listener(store.revision));
  });
}

/** Change the store's plain fields (not `steps`) and re-render. */
export function update(fields) {
  Object.assign(store, fields);
  if ("feed" in fields) document.body.dataset.feed = store.feed;
  notify();
}

/** Say `text` to screen readers, politely. */
export function announce(text) {
  // A repeated text must still be read: clear it first.
  update({ announcement: store.announcement === text ? `${text}\u00a0` : text });
}

/** Whether `doc` is newer than what the store holds for its name: a step's `version` grows
 * with each change; a step deleted and created again under the same name starts over, so
 * its creation time decides first. */
function newer(doc, current) {
  if (!current) return true;
  if (doc.timeCreated !== current.timeCreated) return doc.timeCreated > current.timeCreated;
  return (doc.version ?? 0) >= (current.version ?? 0);
}

/** Apply the feed's changes (metadata, or `{name, deleted: true}`), oldest first. */
export function applyChanges(changes) {
  for (const change of changes) {
    if (change.deleted) store.steps.delete(change.name);
    else if (newer(change, store.steps.get(change.name))) store.steps.set(change.name, change);
  }
  store.revision += 1;
  notify();
}

/** Replace every step (a fresh load). Exposed so the list can be exercised with any data. */
export function replaceSteps(steps) {
  store.steps = new Map(steps.map((step) => [step.name, step]));
  store.revision += 1;
  notify();
}

/** Re-render a component whenever the store changes (at most once a frame). */
export function useStore() {
  const [, setRevision] = useState(0);
  useEffect(() => {
    const listener = () => setRevision((n) => n + 1);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, []);
  return store;
}

let feed = null;
let attempt = 0;

/** Load every step and follow the feed: `GET /observe` for the cursor first (so nothing
 * between the read and the feed is lost), then every page of `GET /steps`, then the feed
 * from the cursor. Called again after a 410 (cursor expired), a new token, or a failure. */
export async function connect() {
  feed?.stop();
  feed = null;
  const mine = ++attempt;
  update({ feed: "connecting", feedMode: null, loading: 0, error: null, needToken: false });
  try {
    const { cursor } = await call("/observe");
    const steps = await allSteps((count) => mine === attempt && update({ loading: count }));
    if (mine !== attempt) return;
    replaceSteps(steps);
    update({ loading: null });
    feed = new ChangeFeed(cursor, {
      onChanges: applyChanges,
      onState: (state, mode) => {
        if (state !== store.feed) announce(FEED_WORDS[state] ?? state);
        update({ feed: state, feedMode: mode ?? store.feedMode });
      },
      onExpired: () => connect(),
    }).start();
  } catch (error) {
    if (mine !== attempt) return;
    if (error.status === 401) return; // the token form is shown (onUnauthorized)
    update({ feed: "reconnecting", error: error.message });
    setTimeout(() => mine === attempt && connect(), 3000);
  }
}

const FEED_WORDS = {
  live: "Connected: following changes live",
  reconnecting: "Connection lost: reconnecting",
};

onUnauthorized(() => {
  if (store.needToken) return;
  feed?.stop();
  attempt += 1; // a load in flight is abandoned
  update({ needToken: true, feed: "unauthorized", loading: null });
});
