// The dashboard's entry: a hash router with three views, the job list (#/jobs?state=FAILED), one job
// (#/jobs/ID, with its results from job-results.js and its log from log-view.js) and the launch queue
// with capacity (#/queue, queue.js), each refreshing itself from the API with fetch, without a page
// reload, when a job event arrives (GET /events, in local mode) and on a timer. The DOM is built from data as text only (ui.js says why).
/* global document, window, location, setTimeout, clearTimeout, URLSearchParams */
import {
  ApiError,
  FINAL,
  STATES,
  TARGETS,
  ago,
  badge,
  bytes,
  clone,
  getJson,
  h,
  jobHash,
  jobUrl,
  mono,
  poll,
  shortId,
  sourceName,
  span,
  timeFormat,
  when,
  onJobEvents,
  SLOW_POLL_MS,
  streaming,
} from './ui.js';
import { attemptRefusalsRow, queueDetailRows, queueView, waitingOf } from './queue.js';
import { logFollower } from './log-view.js';
import { jobResults } from './job-results.js';
import { errorGist, sharedParts, withoutShared } from './text.js';
import { RETRYABLE_STATES, formatUsd } from './core.js';

// The buttons follow the dispatcher's rules so that they are off when pressing them could only fail;
// the dispatcher decides all the same (a 409 is shown as it comes).
const CANCELLABLE = new Set(STATES.filter((state) => !FINAL.has(state)));
const RETRYABLE = new Set(RETRYABLE_STATES);
// How an attempt ended, drawn in the colours of the job state it is closest to.
const OUTCOME_LOOK = {
  succeeded: 'SUCCEEDED',
  failed: 'FAILED',
  'timed-out': 'FAILED',
  preempted: 'CANCELLED',
  cancelled: 'CANCELLED',
  lost: 'IGNORED',
};

const LIST_EVERY_MS = 3000;
const JOB_EVERY_MS = 2000;
const FINAL_JOB_EVERY_MS = 10_000; // a final job changes again only if someone retries it
const PAGE_SIZE = 50;

function outcomeBadge(outcome) {
  if (outcome === undefined) return '—';
  const look = (OUTCOME_LOOK[outcome] ?? 'unknown').toLowerCase();
  return h('span', { class: `badge small state-${look}` }, outcome);
}

/** Milliseconds from `start` to `end`, or to now while it has not ended. */
function elapsed(start, end, now, running) {
  if (start === undefined) return undefined;
  const to = end !== undefined ? Date.parse(end) : running ? now : undefined;
  return to === undefined ? undefined : to - Date.parse(start);
}

/** How long the current attempt ran (or has been running). */
function jobRunMs(job, now) {
  const current = job.attempts.at(-1);
  const start = current?.startedAt ?? job.startedAt ?? current?.launchedAt;
  return elapsed(start, current?.finishedAt ?? job.finishedAt, now, !FINAL.has(job.state));
}

// A job carries what routing expected (`estimate`: where, how long, how much, and the places it
// priced) and, once an attempt ended, what it cost (`cost`: from measured run times). The page
// computes nothing itself.
const hasCost = (job) => job.estimate !== undefined || job.cost !== undefined;

/** US dollars as `pipeline` shows them: $1.23, $0.19, $0.00045; "—" when unknown. */
function usd(amount) {
  return typeof amount === 'number' && Number.isFinite(amount) ? formatUsd(amount) : '—';
}

function place(option) {
  if (option.target !== 'vm') return 'Cloud Run job';
  const spot = option.spot === undefined ? '' : option.spot ? ' spot' : ' standard';
  return `VM ${option.machineType ?? ''}${spot}`;
}

function costText(job) {
  const parts = [];
  if (job.estimate !== undefined) parts.push(`est. ${usd(job.estimate.usd)}`);
  if (job.cost !== undefined) parts.push(usd(job.cost.usd));
  return parts.join(' / ') || '—';
}

function estimateView(estimate) {
  const rows = estimate.options.map((option) =>
    h('li', {}, [
      `${place(option)}: `,
      option.feasible
        ? `${span(option.seconds * 1000)}, ${usd(option.usd)}`
        : `cannot (${option.why ?? 'over its limits'})`,
    ]),
  );
  return h('div', {}, [
    `${usd(estimate.usd)} on ${place(estimate)}, ${span(estimate.seconds * 1000)} expected (${estimate.basis})`,
    rows.length > 1 ? h('ul', { class: 'options' }, rows) : null,
  ]);
}

function costView(cost) {
  return h('div', {}, [
    usd(cost.usd),
    h(
      'ul',
      { class: 'options' },
      cost.detail.map((line) => h('li', {}, line)),
    ),
  ]);
}

function resourcesText(template) {
  if (template === undefined) return undefined;
  const parts = [];
  if (template.cpu !== undefined) parts.push(`${template.cpu} vCPU`);
  if (template.memoryBytes !== undefined) parts.push(bytes(template.memoryBytes));
  if (template.machineType !== undefined) parts.push(template.machineType);
  if (template.accelerator !== undefined)
    parts.push(`${template.accelerator.type} × ${template.accelerator.count}`);
  if (template.spot) parts.push('spot');
  if (template.timeoutSeconds !== undefined) parts.push(`timeout ${span(template.timeoutSeconds * 1000)}`);
  return parts.join(' · ') || undefined;
}

// ---- routes ----------------------------------------------------------------------------------

function listHash(state = '', page = '') {
  const q = new URLSearchParams();
  if (state) q.set('state', state);
  if (page) q.set('page', page);
  const query = String(q);
  return query ? `#/jobs?${query}` : '#/jobs';
}

function wholeNumber(text) {
  return text !== null && /^[1-9]\d{0,5}$/.test(text) ? Number(text) : undefined;
}

function parseRoute() {
  let hash = location.hash.slice(1);
  if (hash === '' || hash === '/') {
    // ?job=ID and ?state=FAILED links work too, for whoever builds a link without the hash.
    const q = new URLSearchParams(location.search);
    hash = q.get('job') ? `/jobs/${encodeURIComponent(q.get('job'))}` : `/jobs?${q}`;
  }
  const cut = hash.indexOf('?');
  const path = cut < 0 ? hash : hash.slice(0, cut);
  const params = new URLSearchParams(cut < 0 ? '' : hash.slice(cut + 1));
  if (path === '/queue') return { view: 'queue' };
  const match = /^\/jobs\/([^/]+)$/.exec(path);
  if (match) {
    let id;
    try {
      id = decodeURIComponent(match[1]);
    } catch {
      id = match[1];
    }
    return { view: 'job', id, attempt: wholeNumber(params.get('attempt')) };
  }
  const state = (params.get('state') ?? '').toUpperCase();
  return { view: 'list', state: STATES.includes(state) ? state : '', page: params.get('page') ?? '' };
}

// ---- the job list ----------------------------------------------------------------------------

function sourceCell(job) {
  const s = job.source;
  if (s.kind === 'object') {
    return [
      h('div', { class: 'primary clip', title: s.object.name }, s.object.name),
      h('div', { class: 'secondary' }, `${s.object.bucket} · ${bytes(s.object.size)}`),
    ];
  }
  const args = s.args.join(' ');
  return [
    h('div', { class: 'primary clip mono', title: sourceName(job) }, sourceName(job)),
    args ? h('div', { class: 'secondary clip mono', title: args }, args) : null,
  ];
}

function routeCell(job) {
  const rule = job.rule === undefined ? null : h('div', { class: 'secondary mono' }, job.rule);
  if (job.target === undefined) return rule ?? '—';
  const spot = job.attempts.at(-1)?.spot ? ' · spot' : '';
  return [h('div', { class: 'primary' }, `${TARGETS[job.target] ?? job.target}${spot}`), rule];
}

function attemptsCell(job) {
  const n = job.attempts.length;
  if (n === 0) return '—';
  const outcomes = job.attempts.map((a) => `#${a.attempt} ${a.outcome ?? 'under way'}`).join(', ');
  return h('span', { title: outcomes, class: n > 1 ? 'retried' : null }, String(n));
}

/** Why it is where it is: a queued job listed in launch order says why it waits, and its place. */
function reasonOf(job) {
  if (job.waiting === undefined) return job.reason;
  const place = job.waiting.position === 0 ? '' : `#${job.waiting.position} in line: `;
  return place + job.waiting.reason;
}

/** A FAILED job's error: its gist in the cell, the whole of it on hover. */
function errorCell(job) {
  const error = job.state === 'FAILED' ? job.error : undefined;
  return h(
    'td',
    { class: 'error-cell', title: error ?? null },
    error === undefined ? '' : h('div', { class: 'clip2' }, errorGist(error)),
  );
}

/**
 * `shared`: what every visible row's reason shares (text.js), left out of the cell, not the title;
 * `sameReason`: every row has the same one, said once above the list instead.
 */
function jobRow(job, now, { withCost, withError, shared, sameReason }) {
  const reason = reasonOf(job);
  const shown = sameReason ? 'same' : withoutShared(reason, shared);
  const row = h(
    'tr',
    { 'data-id': job.id, 'data-state': job.state },
    h('td', {}, badge(job.state)),
    h('td', { class: 'mono' }, h('a', { href: jobHash(job.id), title: job.id }, shortId(job.id))),
    h('td', { class: 'source' }, sourceCell(job)),
    h('td', { class: 'route' }, routeCell(job)),
    h(
      'td',
      { class: 'reason', title: reason ?? null },
      h('div', { class: sameReason ? 'clip2' : 'clip2 differs' }, shown ?? '—'),
    ),
    withError ? errorCell(job) : null,
    h('td', { class: 'num' }, attemptsCell(job)),
    h('td', { class: 'num' }, span(jobRunMs(job, now))),
    withCost ? h('td', { class: 'num cost' }, costText(job)) : null,
    h('td', { class: 'num', title: when(job.createdAt) }, ago(job.createdAt, now)),
  );
  row.addEventListener('click', (event) => {
    // The whole row opens the job, unless the click was on its link already or ended a selection.
    if (event.target.closest('a') !== null || String(window.getSelection()) !== '') return;
    location.hash = jobHash(job.id);
  });
  return row;
}

/** The one reason every row shown has, when there are rows enough for that to say something. */
function sameReasonOf(reasons) {
  const given = reasons.filter((r) => typeof r === 'string' && r !== '');
  return given.length > 1 && given.length === reasons.length && given.every((r) => r === given[0])
    ? given[0]
    : undefined;
}

/**
 * Above the list, what its reason cells leave out: the part every reason shares, or, when every row
 * has the same reason, that reason once and whole.
 */
function drawReasonNote(note, sameReason, { prefix, suffix }) {
  let text = '';
  if (sameReason !== undefined) text = `Every job shown has the reason: ${sameReason}`;
  else if (prefix !== '' || suffix !== '') {
    const [start, end] = [prefix.trim(), suffix.trim()];
    const common = start && end ? `${start} … ${end}` : start ? `${start} …` : `… ${end}`;
    text = `Reasons leave out what all of them share: “${common}”`;
  }
  note.textContent = text;
  note.hidden = text === '';
}

function listView(root, route) {
  const view = clone('list-view');
  const chips = view.querySelector('.chips');
  const body = view.querySelector('tbody');
  const costHeader = view.querySelector('.cost-col');
  const errorHeader = view.querySelector('.error-col');
  const reasonNote = view.querySelector('.reason-note');
  const empty = view.querySelector('.empty');
  const pager = view.querySelector('.pager');
  for (const state of ['', ...STATES]) {
    const attrs = {
      class: state === '' ? 'chip' : `chip state-${state.toLowerCase()}`,
      href: listHash(state),
      'aria-current': state === route.state ? 'page' : null,
    };
    chips.append(h('a', attrs, state === '' ? 'All' : state));
  }
  root.replaceChildren(view);
  document.title = route.state ? `${route.state} jobs · Pipeline` : 'Jobs · Pipeline';

  const lastState = new Map(); // id -> state at the last refresh, to flash the rows that changed
  let first = true;
  const loop = poll(
    async (signal) => {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (route.state) query.set('state', route.state);
      if (route.page) query.set('pageToken', route.page);
      const page = await getJson(`jobs?${query}`, { signal });
      const now = Date.now();
      const withCost = page.jobs.some(hasCost);
      const withError = page.jobs.some((job) => job.state === 'FAILED' && job.error !== undefined);
      costHeader.hidden = !withCost;
      errorHeader.hidden = !withError;
      const reasons = page.jobs.map(reasonOf);
      const shared = sharedParts(reasons);
      const sameReason = sameReasonOf(reasons);
      drawReasonNote(reasonNote, sameReason, shared);
      const rows = page.jobs.map((job) => {
        const row = jobRow(job, now, { withCost, withError, shared, sameReason: sameReason !== undefined });
        const before = lastState.get(job.id);
        if (!first && before !== job.state) row.classList.add(before === undefined ? 'new' : 'changed');
        return row;
      });
      body.replaceChildren(...rows);
      lastState.clear();
      for (const job of page.jobs) lastState.set(job.id, job.state);
      first = false;
      empty.hidden = page.jobs.length > 0;
      empty.textContent = route.state
        ? `No ${route.state} jobs${route.page ? ' on this page' : ''}.`
        : 'No jobs yet: drop a file into the input bucket, or POST /jobs.';
      pager.replaceChildren(
        route.page ? h('a', { class: 'button', href: listHash(route.state) }, '← Newest') : '',
        page.nextPageToken
          ? h('a', { class: 'button', href: listHash(route.state, page.nextPageToken) }, 'Older →')
          : '',
        // QUEUED in launch order comes as one page, the head of the queue.
        page.more ? h('a', { class: 'button', href: '#/queue' }, 'More wait: the queue →') : '',
      );
    },
    // The stream's events refresh the list (below, at start): the poll is then only a fallback.
    () => (streaming() ? SLOW_POLL_MS : LIST_EVERY_MS),
  );
  return { stop: loop.stop, refresh: loop.refresh, accepts: () => false, update() {} };
}

// ---- one job ---------------------------------------------------------------------------------

function detailRows(job, now, waiting) {
  const rows = [];
  /** A row for a value the job has (undefined and empty ones are left out), drawn by `draw`. */
  const add = (label, value, draw = (v) => v) => {
    if (value === undefined || value === null || value === '') return;
    rows.push(h('dt', {}, label), h('dd', {}, draw(value)));
  };
  const code = (text) => mono(text, { class: 'break' });
  const at = (iso) => `${when(iso)} · ${ago(iso, now)}`;
  const s = job.source;
  if (s.kind === 'object') {
    add('Input', `gs://${s.object.bucket}/${s.object.name}`, code);
    add('Size', [bytes(s.object.size), s.object.contentType ? ` · ${s.object.contentType}` : '']);
    add('Generation', s.object.generation, code);
  } else {
    add('Image', s.image, code);
    add('Task', s.task);
    add('Arguments', s.args.join(' '), code);
    const env = Object.entries(s.env).map(([key, value]) => h('li', {}, `${key}=${value}`));
    add('Environment', env.length > 0 ? env : undefined, (items) => h('ul', { class: 'env mono' }, items));
  }
  const params = Object.entries(job.params ?? {}).map(([key, value]) => h('li', {}, `${key}=${value}`));
  add('Parameters', params.length > 0 ? params : undefined, (items) => h('ul', { class: 'env mono' }, items));
  add('Target', job.target, (target) => TARGETS[target] ?? target);
  add('Rule', job.rule, code);
  add('Reason', job.reason);
  queueDetailRows(job, waiting, now, add);
  add('Resources', resourcesText(job.template));
  add('Estimated cost', job.estimate, estimateView);
  add('Cost', job.cost, costView);
  add('Execution', job.execution, code);
  add('Exit code', job.exitCode, (exit) => code(String(exit)));
  add('Error', job.error, (error) => h('pre', { class: 'error' }, error));
  add('Output', job.outputUri, code);
  add('Logs', job.logsUri, code);
  add('Due', job.runAt, at);
  add('Schedule', job.schedule, (schedule) => code(schedule.cron));
  add('Created', job.createdAt, at);
  add('Started', job.startedAt, at);
  add('Finished', job.finishedAt, at);
  add('Ran for', job.attempts.length > 0 ? span(jobRunMs(job, now)) : undefined);
  return rows;
}

function historyItem(entry, now) {
  return h(
    'li',
    {},
    h(
      'time',
      { datetime: entry.at, title: `${when(entry.at)} · ${ago(entry.at, now)}` },
      timeFormat.format(Date.parse(entry.at)),
    ),
    h(
      'span',
      { class: 'move' },
      entry.from === undefined ? null : [badge(entry.from, 'small'), ' → '],
      badge(entry.to, 'small'),
    ),
    entry.detail === undefined ? null : h('div', { class: 'detail' }, entry.detail),
  );
}

/** What ran an attempt; a batch's task says which (CLOUD_RUN_TASK_INDEX) of how many. */
function executionText(a) {
  const execution = a.execution ?? '—';
  return a.batch === undefined ? execution : `${execution} · task ${a.batch.index} of ${a.batch.size}`;
}

function attemptRow(job, a, now, shown) {
  const ended = a.finishedAt !== undefined || a.attempt < job.attempt || FINAL.has(job.state);
  return h(
    'tr',
    { class: a.attempt === shown ? 'shown' : null },
    h('td', { class: 'num' }, String(a.attempt)),
    h('td', {}, `${TARGETS[a.target] ?? a.target}${a.spot ? ' · spot' : ''}`),
    h('td', { class: 'mono clip', title: a.execution ?? null }, executionText(a)),
    h('td', { title: when(a.launchedAt) }, ago(a.launchedAt, now)),
    h('td', { class: 'num' }, span(elapsed(a.startedAt ?? a.launchedAt, a.finishedAt, now, !ended))),
    h('td', { class: 'num mono' }, a.exitCode === undefined ? '—' : String(a.exitCode)),
    h('td', {}, outcomeBadge(a.outcome)),
    h('td', { class: 'error-cell', title: a.error ?? null }, h('div', { class: 'clip2' }, a.error ?? '')),
    h('td', {}, a.attempt === shown ? 'shown' : h('a', { href: jobHash(job.id, a.attempt) }, 'view')),
  );
}

function jobView(root, route) {
  const view = clone('job-view');
  const part = (selector) => view.querySelector(selector);
  const ui = {
    title: part('.job-title'),
    badge: part('.job-badge'),
    id: part('.job-id'),
    notice: part('.notice'),
    details: part('.details'),
    history: part('.history'),
    attempts: part('.attempts tbody'),
    noAttempts: part('.attempts').closest('.card').querySelector('.empty'),
    cancel: part('[data-action="cancel"]'),
    retry: part('[data-action="retry"]'),
  };
  const log = logFollower(route.id, part('.log-card'));
  const results = jobResults(route.id, view);
  ui.id.textContent = route.id;
  // The page's frame goes up with the job's first answer: an id that names no job gets the 404 page
  // instead, not a frame of empty panels and buttons.
  let shown = false;
  root.replaceChildren(h('p', { class: 'empty' }, `Loading job ${route.id}…`));
  document.title = 'Job · Pipeline';

  let chosen = route.attempt; // undefined: the current attempt, and the next one after a retry
  let job;
  let waiting; // its place in the queue and why, while it is QUEUED
  let busy = false;
  let noticeTimer;

  function notify(text, kind) {
    clearTimeout(noticeTimer);
    ui.notice.textContent = text;
    ui.notice.dataset.kind = kind;
    ui.notice.hidden = false;
    if (kind === 'ok') noticeTimer = setTimeout(() => (ui.notice.hidden = true), 6000);
  }

  function render() {
    const now = Date.now();
    const name = sourceName(job);
    document.title = `${name} · ${job.state} · Pipeline`;
    ui.title.textContent = name;
    ui.title.title = name;
    ui.badge.replaceChildren(badge(job.state));
    ui.cancel.disabled = busy || !CANCELLABLE.has(job.state);
    ui.retry.disabled = busy || !RETRYABLE.has(job.state);
    ui.details.replaceChildren(...detailRows(job, now, waiting));
    ui.history.replaceChildren(...job.history.map((entry) => historyItem(entry, now)));
    const shown = chosen ?? job.attempts.at(-1)?.attempt;
    ui.attempts.replaceChildren(
      ...job.attempts.flatMap((a) => [attemptRow(job, a, now, shown), attemptRefusalsRow(a, 9) ?? []]),
    );
    ui.noAttempts.hidden = job.attempts.length > 0;
  }

  const loop = poll(
    async (signal) => {
      try {
        job = await getJson(jobUrl(route.id), { signal });
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) throw err;
        notFoundView(root, route.id);
        return false;
      }
      // Its place is the queue's, not the job's: a failure to read it leaves the recorded reason.
      waiting = job.state === 'QUEUED' ? await waitingOf(route.id, signal).catch(() => undefined) : undefined;
      render();
      if (!shown) {
        root.replaceChildren(view);
        shown = true;
      }
      await results.update(job, signal);
      await log.update(job, chosen, signal);
      results.drawProgress(job, log);
    },
    () => (job !== undefined && FINAL.has(job.state) && log.done ? FINAL_JOB_EVERY_MS : JOB_EVERY_MS),
  );

  async function act(action) {
    if (action === 'cancel' && !window.confirm('Cancel this job? What runs is stopped.')) return;
    busy = true;
    render();
    try {
      job = await getJson(`${jobUrl(route.id)}/${action}`, { method: 'POST' });
      notify(action === 'cancel' ? 'Cancelled.' : 'Retried: a new attempt is on its way.', 'ok');
    } catch (err) {
      notify(`Could not ${action}: ${err.message}`, 'error');
    } finally {
      busy = false;
      if (job !== undefined) render();
      void loop.refresh();
    }
  }
  ui.cancel.addEventListener('click', () => void act('cancel'));
  ui.retry.addEventListener('click', () => void act('retry'));

  return {
    stop: loop.stop,
    refresh: loop.refresh,
    // Another attempt of the same job: the same view shows it, without starting over.
    accepts: (next) => next.view === 'job' && next.id === route.id,
    update(next) {
      chosen = next.attempt;
      if (job !== undefined) render();
      void loop.refresh();
    },
  };
}

/** What an id that names no job shows: that, and the way back; nothing of a job's page. */
function notFoundView(root, id) {
  const view = clone('not-found-view');
  view.querySelector('.missing-id').textContent = id;
  view.querySelector('.not-found-why').textContent = /^[0-9a-f]{32}$/.test(id)
    ? 'The dispatcher has no job with this id. The link may be to another pipeline.'
    : 'This is not a job id (32 hexadecimal characters): the link may be mistyped or cut short.';
  root.replaceChildren(view);
  document.title = 'No such job · Pipeline';
}

// ---- start -----------------------------------------------------------------------------------

const root = document.getElementById('view');
let current;

function show() {
  const route = parseRoute();
  if (current?.accepts(route)) {
    current.update(route);
    return;
  }
  current?.stop();
  const views = { job: jobView, queue: queueView, list: listView };
  current = views[route.view](root, route);
  const section = route.view === 'queue' ? 'queue' : 'jobs';
  for (const link of document.querySelectorAll('.views a')) {
    if (link.dataset.view === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  window.scrollTo(0, 0);
}

window.addEventListener('hashchange', show);
// A job changed state: the view shown now reads the API again (its poll merges a burst of events).
onJobEvents(() => void current?.refresh());
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void current?.refresh();
});
show();
