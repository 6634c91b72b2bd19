// What every view of the dashboard uses: building the DOM from data as text only, formatting times
// and sizes, reading the API, and refreshing a view: on each job event of GET /events (local mode's
// Server-Sent Events), and on a timer, slow while that stream is open, as before where there is
// none (on Google Cloud the events go to Pub/Sub). app.js routes between the views.
//
// Everything the API returns is someone's data (an object name or a refusal's reason can be
// `<script>…`), so the DOM is built with createElement, setAttribute and text nodes only, never by
// parsing markup; the server's Content-Security-Policy, which refuses inline script, is the second wall.
/* global document, fetch, setTimeout, clearTimeout, AbortController, EventSource, location, URLSearchParams */

import { FINAL_STATES, JOB_STATES, formatBytes, formatSeconds } from './core.js';

// core.js is @pipeline/core's, served by the dispatcher (router.ts): the states and formatters are
// the ones the dispatcher and the `pipeline` command use, not copies.
export const STATES = JOB_STATES;
export const FINAL = new Set(FINAL_STATES);

export const TARGETS = { 'cloud-run-job': 'Cloud Run job', vm: 'VM' };

// ---- DOM and formatting ----------------------------------------------------------------------

/** An element with attributes (null, undefined and false left out) and children (strings as text). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(2)) {
    if (child === null || child === undefined || child === false || child === '') continue;
    node.append(child); // a string becomes a Text node: never parsed as markup
  }
  return node;
}

export function clone(templateId) {
  return document.getElementById(templateId).content.cloneNode(true);
}

export function badge(state, extra = '') {
  const look = STATES.includes(state) ? state.toLowerCase() : 'unknown';
  return h('span', { class: `badge state-${look} ${extra}`.trim() }, state);
}

export const mono = (text, attrs = {}) =>
  h('span', { ...attrs, class: `mono ${attrs.class ?? ''}`.trim() }, text);

/** The first characters of an id are enough to tell jobs apart on one screen; the full id is in a title. */
export const shortId = (id) => (id.length > 10 ? id.slice(0, 10) : id);

export const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export function when(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? String(iso) : dateFormat.format(t);
}

export function ago(iso, now) {
  const ms = now - Date.parse(iso);
  if (Number.isNaN(ms)) return '—';
  const s = Math.abs(ms) / 1000;
  if (ms >= 0 && s < 5) return 'just now';
  const text =
    s < 60
      ? `${Math.floor(s)}s`
      : s < 3600
        ? `${Math.floor(s / 60)}m`
        : s < 86400
          ? `${Math.floor(s / 3600)}h`
          : `${Math.floor(s / 86400)}d`;
  return ms < 0 ? `in ${text}` : `${text} ago`;
}

/** Milliseconds as `pipeline` shows seconds: "0.8 s", "41 s", "3m 5s", "1h 30m"; "—" when unknown. */
export function span(ms) {
  if (typeof ms !== 'number' || Number.isNaN(ms)) return '—';
  return formatSeconds(Math.max(0, ms) / 1000);
}

/** Bytes in binary units as `pipeline` shows them: "100 B", "3.2 GiB"; "—" when unknown. */
export function bytes(n) {
  return typeof n === 'number' && Number.isFinite(n) ? formatBytes(n) : '—';
}

export function sourceName(job) {
  const s = job.source;
  if (s.kind === 'object') return s.object.name;
  return s.image ?? (s.task !== undefined ? `task ${s.task}` : 'container run');
}

// ---- the API ---------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (typeof body?.error === 'string') message = body.error;
  } catch {
    // not JSON: the status says enough
  }
  return new ApiError(res.status, message);
}

export async function getJson(url, init = {}) {
  const res = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' }, ...init });
  if (!res.ok) throw await failure(res);
  return res.json();
}

// Relative URLs: the page works wherever the API is, at the root or behind a path prefix.
export const jobUrl = (id) => `jobs/${encodeURIComponent(id)}`;

export function jobHash(id, attempt) {
  return `#/jobs/${encodeURIComponent(id)}${attempt === undefined ? '' : `?attempt=${attempt}`}`;
}

// ---- refreshing ------------------------------------------------------------------------------

const live = document.getElementById('live');

function markLive(error) {
  live.dataset.state = error === undefined ? 'ok' : 'error';
  live.querySelector('.live-text').textContent =
    error === undefined
      ? `Live · ${timeFormat.format(Date.now())}`
      : `Can't reach the dispatcher (${error.message}); retrying`;
}

/**
 * Runs `task(signal)` now and again `delay()` ms after each run ends, until stopped or until the task
 * returns false. Never two runs at once; while the tab is hidden it skips the work. Stopping aborts
 * the fetches of a run under way, so a view that is gone never draws over the next one.
 */
export function poll(task, delay) {
  const abort = new AbortController();
  let timer;
  let running = false;
  let again = false;
  async function run() {
    clearTimeout(timer);
    if (abort.signal.aborted) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    let goOn = true;
    try {
      if (!document.hidden) {
        goOn = (await task(abort.signal)) !== false;
        markLive();
      }
    } catch (err) {
      if (!abort.signal.aborted) markLive(err);
    } finally {
      running = false;
    }
    if (abort.signal.aborted || !goOn) return;
    if (again) {
      again = false;
      void run();
      return;
    }
    timer = setTimeout(run, delay());
  }
  void run();
  return {
    refresh: run,
    stop() {
      abort.abort();
      clearTimeout(timer);
    },
  };
}

// ---- job events ------------------------------------------------------------------------------

/**
 * How often a view polls while the event stream is open: a fallback only, since every change of a
 * job's state arrives as an event. `?slowPoll=MS` in the page's address sets it (the browser test
 * makes it long, to see that a new job appears by its event alone).
 */
export const SLOW_POLL_MS = Number(new URLSearchParams(location.search).get('slowPoll')) || 60_000;

const eventListeners = new Set();
let events;
let eventsOpen = false;

/** True while GET /events is connected: the views poll slowly then. */
export function streaming() {
  return eventsOpen;
}

/**
 * Calls `listener(event)` for each job event (the JSON of @pipeline/core's JobEvent). The stream is
 * opened once, by the first listener, where the dispatcher has one; the browser reconnects it after
 * a drop (the server's `retry:`). Without it (Google Cloud) the views keep their usual polls.
 */
export function onJobEvents(listener) {
  eventListeners.add(listener);
  // The dispatcher marks the page when it serves GET /events (dashboard/router.ts).
  if (events === undefined && document.documentElement.dataset.events === 'on') {
    events = new EventSource('events');
    events.addEventListener('open', () => {
      eventsOpen = true;
      document.documentElement.dataset.stream = 'open';
    });
    events.addEventListener('error', () => {
      eventsOpen = false; // the usual polls until it is open again
      document.documentElement.dataset.stream = 'retrying';
    });
    events.addEventListener('message', (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // not an event of ours
      }
      for (const each of eventListeners) each(event);
    });
  }
  return () => eventListeners.delete(listener);
}
