// The launch queue on the dashboard: the queue view (#/queue: what waits, in launch order, and why;
// capacity in use per target against its limit; ceilings learned from refusals), and the queue's part
// of one job's page (its entry, its live place in line, the zones that refused an attempt).
// Reasons come from the dispatcher and the platforms, and name objects: they are drawn as text.
/* global document */
import {
  TARGETS,
  ago,
  clone,
  getJson,
  h,
  jobHash,
  mono,
  poll,
  shortId,
  sourceName,
  span,
  when,
  SLOW_POLL_MS,
  streaming,
} from './ui.js';
import { BACKFILLS_SHOWN, drawBackfills } from './backfills.js';

const QUEUE_EVERY_MS = 3000;
const QUEUE_PAGE = 50;
/** The API's largest page: a job's live place is looked for this far into the queue. */
const MAX_PAGE = 200;

const POOL_NAMES = { run: 'Cloud Run executions', 'vm-cpus': 'VM vCPUs', total: 'Local slots' };

function poolName(pool) {
  return POOL_NAMES[pool] ?? (pool.startsWith('gpus:') ? `${pool.slice(5)} GPUs (VM)` : pool);
}

/** JSON has no Infinity: no limit comes as null, and an unknown one is absent. */
const bounded = (n) => typeof n === 'number' && Number.isFinite(n);

/** The pools that bound launches, each with what is in use and its limit, as GET /capacity says them. */
function pools(view) {
  const { limits, inUse, ceilings } = view;
  const ceiling = (pool) => ceilings.find((c) => c.pool === pool);
  const list = [
    {
      pool: 'run',
      target: TARGETS['cloud-run-job'],
      name: 'Executions',
      used: inUse.cloudRunExecutions,
      limit: limits.runExecutions,
    },
    {
      pool: 'rate',
      target: TARGETS['cloud-run-job'],
      name: 'runJob calls, last minute',
      used: view.runLaunchesLastMinute,
      limit: limits.runJobsPerMinute,
    },
    {
      pool: 'vm-cpus',
      target: TARGETS.vm,
      name: 'vCPUs',
      used: inUse.vmCpus,
      limit: limits.vmCpus,
      quota: limits.vmCpuQuota,
    },
  ];
  const types = [...new Set([...Object.keys(limits.gpus ?? {}), ...Object.keys(inUse.gpus)])].sort();
  for (const type of types) {
    const gpu = limits.gpus?.[type];
    list.push({
      pool: `gpus:${type}`,
      target: TARGETS.vm,
      name: `${type} GPUs`,
      used: inUse.gpus[type] ?? 0,
      limit: gpu?.limit,
      quota: gpu?.quota,
    });
  }
  const local = bounded(limits.total);
  list.push({
    pool: 'total',
    target: 'Any',
    name: local ? 'Local slots' : 'Launched or running',
    used: inUse.total,
    limit: limits.total,
  });
  return list.map((p) => ({ ...p, ceiling: ceiling(p.pool) }));
}

function poolCard(p, now) {
  const limit = bounded(p.limit) ? p.limit : undefined;
  const effective = p.ceiling === undefined ? limit : Math.min(limit ?? Infinity, p.ceiling.limit);
  const figure = [limit === undefined ? `${p.used} · no limit` : `${p.used} of ${limit}`];
  if (bounded(p.quota)) figure.push(`quota ${p.quota}`);
  if (p.ceiling !== undefined)
    figure.push(`${p.ceiling.limit} for now, learned (until ${ago(p.ceiling.until, now)})`);
  // A meter needs no inline style (the page's policy allows none), and says how full it is by itself.
  const meter =
    effective === undefined
      ? null
      : h('meter', {
          min: 0,
          max: Math.max(effective, 1),
          value: p.used,
          low: effective * 0.7,
          high: effective * 0.9,
          optimum: 0,
        });
  return h(
    'div',
    { class: 'pool', 'data-pool': p.pool },
    h(
      'div',
      { class: 'pool-head' },
      h('span', { class: 'pool-target' }, p.target),
      h('span', { class: 'pool-name' }, p.name),
    ),
    meter,
    h('div', { class: 'pool-figure' }, figure.join(' · ')),
  );
}

function ceilingRow(c, now) {
  return h(
    'tr',
    { 'data-pool': c.pool },
    h('td', {}, poolName(c.pool)),
    h('td', { class: 'num' }, String(c.limit)),
    h('td', { title: when(c.until) }, ago(c.until, now)),
    h('td', { class: 'reason' }, c.reason),
  );
}

function queueRow(job, now) {
  const waiting = job.waiting ?? { position: 0, reason: job.queue?.reason ?? '—' };
  const queuedAt = job.queue?.queuedAt;
  return h(
    'tr',
    { 'data-id': job.id },
    h('td', { class: 'num' }, waiting.position === 0 ? '—' : String(waiting.position)),
    h(
      'td',
      { class: 'source' },
      h('a', { href: jobHash(job.id), class: 'primary clip', title: sourceName(job) }, sourceName(job)),
      h('div', { class: 'secondary mono', title: job.id }, shortId(job.id)),
    ),
    h('td', { class: 'mono' }, job.rule ?? '—'),
    h('td', {}, TARGETS[job.target] ?? job.target ?? '—'),
    h('td', { class: 'reason' }, waiting.reason),
    h(
      'td',
      { class: 'num', title: queuedAt === undefined ? null : when(queuedAt) },
      queuedAt === undefined ? '—' : span(now - Date.parse(queuedAt)),
    ),
    h('td', { class: 'num' }, String(job.queue?.refusals ?? 0)),
  );
}

export function queueView(root) {
  const view = clone('queue-view');
  const part = (selector) => view.querySelector(selector);
  const ui = {
    region: part('.region'),
    pools: part('.pools'),
    caps: part('.rule-caps'),
    notes: part('.capacity-notes'),
    ceilings: part('table.ceilings tbody'),
    noCeilings: part('.no-ceilings'),
    queue: part('table.queue tbody'),
    noQueue: part('.no-queue'),
    more: part('.queue-more'),
    backfills: {
      card: part('.backfills-card'),
      rows: part('table.backfills tbody'),
      none: part('.no-backfills'),
    },
  };
  root.replaceChildren(view);
  document.title = 'Queue · Pipeline';
  const loop = poll(
    async (signal) => {
      // The head of the queue with whole jobs (their names); the capacity view for the pools.
      // Backfills are a card of their own: should they fail to load, the rest still shows.
      const [page, capacity, backfills] = await Promise.all([
        getJson(`jobs?state=QUEUED&limit=${QUEUE_PAGE}`, { signal }),
        getJson('capacity?limit=1', { signal }),
        getJson(`backfills?limit=${BACKFILLS_SHOWN}`, { signal }).catch(() => undefined),
      ]);
      const now = Date.now();
      drawBackfills(ui.backfills, backfills, now);
      const region = capacity.limits.region;
      ui.region.textContent = region === 'local' ? '· local' : `· ${region}`;
      ui.pools.replaceChildren(...pools(capacity).map((p) => poolCard(p, now)));
      // What the dispatcher could not know (a quota it could not read).
      const notes = capacity.limits.notes ?? [];
      ui.notes.hidden = notes.length === 0;
      ui.notes.replaceChildren(...notes.map((note) => h('li', {}, note)));
      const caps = Object.entries(capacity.limits.ruleMaxConcurrent ?? {});
      ui.caps.hidden = caps.length === 0;
      ui.caps.replaceChildren(
        'Rule caps (launched or running at once): ',
        ...caps.flatMap(([rule, n], i) => [i === 0 ? '' : ', ', mono(rule), ` ${n}`]),
      );
      ui.ceilings.replaceChildren(...capacity.ceilings.map((c) => ceilingRow(c, now)));
      ui.noCeilings.hidden = capacity.ceilings.length > 0;
      ui.queue.replaceChildren(...page.jobs.map((job) => queueRow(job, now)));
      ui.noQueue.hidden = page.jobs.length > 0;
      ui.more.hidden = page.more !== true;
      ui.more.textContent = `More wait than the first ${page.jobs.length} shown.`;
    },
    () => (streaming() ? SLOW_POLL_MS : QUEUE_EVERY_MS),
  );
  return { stop: loop.stop, refresh: loop.refresh, accepts: () => false, update() {} };
}

/** A queued job's place in line and why it waits, now; undefined when it is further back than a page. */
export async function waitingOf(id, signal) {
  const view = await getJson(`capacity?limit=${MAX_PAGE}`, { signal });
  return view.queue.jobs.find((q) => q.id === id);
}

/** The job page's rows of its queue entry, through `add(label, value, draw)` of its details. */
export function queueDetailRows(job, waiting, now, add) {
  const q = job.queue;
  if (q === undefined) return;
  const queued = job.state === 'QUEUED';
  const launchedAt = job.attempts.find((a) => a.attempt === job.attempt)?.launchedAt;
  const waited = queued
    ? ` · waiting ${span(now - Date.parse(q.queuedAt))}`
    : launchedAt === undefined
      ? ''
      : ` · launched after ${span(Date.parse(launchedAt) - Date.parse(q.queuedAt))}`;
  add('Queued', `${when(q.queuedAt)}${waited}`);
  let why;
  if (queued)
    why =
      waiting === undefined
        ? q.reason
        : `${waiting.position === 0 ? '' : `#${waiting.position} in line: `}${waiting.reason}`;
  add('Waits', why);
  if (queued) add('Gives up', `${when(q.expiresAt)} · ${ago(q.expiresAt, now)}`);
  if (q.refusals > 0) {
    // The live reason says already when a refused launch is tried again; the recorded one does not.
    const parts = [String(q.refusals)];
    if (queued && waiting === undefined && q.notBefore !== undefined && Date.parse(q.notBefore) > now)
      parts.push(`not tried again before ${when(q.notBefore)}`);
    if (q.reason !== undefined && !(why ?? '').includes(q.reason)) parts.push(`last: ${q.reason}`);
    add('Refusals', parts.join(' · '));
  }
}

/** Under an attempt's row: the zones that refused its VM before one took it. */
export function attemptRefusalsRow(a, columns) {
  if (a.refusals === undefined || a.refusals.length === 0) return null;
  return h(
    'tr',
    { class: 'zone-refusals' },
    h(
      'td',
      { colspan: columns },
      h('span', { class: 'secondary' }, `Attempt ${a.attempt} was refused by zones first:`),
      h(
        'ul',
        { class: 'options' },
        a.refusals.map((refusal) => h('li', {}, refusal)),
      ),
    ),
  );
}
