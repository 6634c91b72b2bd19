// Backfills on the queue view: the newest ones, each with its state and progress, as GET /backfills
// gives them. A backfill names a bucket and a prefix that anyone with the API may have typed: drawn as
// text (h() makes Text nodes), never as markup.
import { ago, h, mono, when } from './ui.js';

/** A backfill's state in the colours of the job state it is like. */
const LOOKS = { RUNNING: 'running', DONE: 'succeeded', FAILED: 'failed', CANCELLED: 'cancelled' };

/** How many backfills the card shows. */
export const BACKFILLS_SHOWN = 10;

/** One line of progress, the words of `pipeline backfills` (core's backfillProgress). */
export function backfillProgress(b) {
  const c = b.counts;
  const made = b.failedOnly ? `${c.retried} retried` : `${c.submitted} new jobs`;
  const errors = c.errors === 0 ? '' : `, ${c.errors} errors`;
  return `${b.pages} page${b.pages === 1 ? '' : 's'}, ${c.listed} listed, ${c.matched} matched, ${made}, ${c.skipped} skipped${errors}`;
}

function backfillRow(b, now) {
  const note =
    b.reason ?? (b.lastError === undefined ? '' : `page failed for now, tried again: ${b.lastError.message}`);
  return h(
    'tr',
    {},
    h('td', {}, h('span', { class: `badge state-${LOOKS[b.state] ?? 'unknown'}` }, b.state)),
    h('td', {}, mono(b.id)),
    h('td', { class: 'clip', title: `gs://${b.bucket}/${b.prefix}` }, `gs://${b.bucket}/${b.prefix}`),
    h('td', {}, backfillProgress(b), note === '' ? '' : h('div', { class: 'secondary' }, note)),
    h('td', { class: 'num', title: when(b.updatedAt) }, ago(b.updatedAt, now)),
  );
}

/** The card's rows; hidden when the dispatcher runs no backfills (its answer says so in a note). */
export function drawBackfills(ui, answer, now) {
  const backfills = answer?.backfills ?? [];
  ui.card.hidden = answer === undefined || answer.note !== undefined;
  ui.rows.replaceChildren(...backfills.map((b) => backfillRow(b, now)));
  ui.none.hidden = backfills.length > 0;
}
