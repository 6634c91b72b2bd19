// What a job produced, on its page: the model summary from its model.json, a link to each of its
// outputs (GET /jobs/:id/outputs; predictions.csv downloads), and, while it runs, how far the worker
// has read its input (the latest progress line of its log). Every field of model.json is the worker's
// and may be absent in an older or newer one: what is missing is left out, never guessed.
import { FINAL, ApiError, ago, bytes, getJson, h, jobHash, jobUrl, mono, when } from './ui.js';
import { count, delimiterText, progressText, targetChoiceText } from './text.js';

/** A model.json this large is not summarized here (wide data: a weight per feature per class). */
const MODEL_MAX_BYTES = 8 * 1024 * 1024;
const CLASSES_SHOWN = 20;
const FEATURES_SHOWN = 12;
/** The outputs people come for, first; the rest (logs) follow in the listing's order. */
const FIRST = ['predictions.csv', 'model.json'];
/** Shown in the browser (the API sends them inline, sandboxed); anything else is saved. */
const VIEWABLE = /\.(json|log|txt)$/i;

export const outputUrl = (jobId, name) =>
  `${jobUrl(jobId)}/outputs/${name.split('/').map(encodeURIComponent).join('/')}`;

const finite = (x) => typeof x === 'number' && Number.isFinite(x);
const fixed = (x, digits) => (finite(x) ? x.toFixed(digits) : undefined);
const percent = (x) => (finite(x) ? `${(100 * x).toFixed(1)}%` : undefined);

function outputItem(jobId, output, now) {
  const url = outputUrl(jobId, output.name);
  const base = output.name.slice(output.name.lastIndexOf('/') + 1);
  const link = VIEWABLE.test(output.name)
    ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, output.name)
    : h('a', { href: url, download: base }, output.name);
  const about = [bytes(output.size), output.updated === undefined ? '' : ago(output.updated, now)];
  return h(
    'li',
    { 'data-name': output.name },
    h('span', { class: 'mono break' }, link),
    h(
      'span',
      { class: 'secondary', title: output.updated === undefined ? null : when(output.updated) },
      about.filter((s) => s !== '').join(' · '),
    ),
  );
}

function ordered(outputs) {
  const rank = (name) => (FIRST.includes(name) ? FIRST.indexOf(name) : FIRST.length);
  return [...outputs].sort((a, b) => rank(a.name) - rank(b.name));
}

/** AUC is one figure for two classes; a newer worker may give several (one-vs-rest, macro...). */
function aucText(auc) {
  if (finite(auc)) return auc.toFixed(4);
  if (typeof auc !== 'object' || auc === null) return undefined;
  const parts = Object.entries(auc).filter(([, v]) => finite(v));
  return parts.length === 0 ? undefined : parts.map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' · ');
}

function classesText(classes, classCounts) {
  if (!Array.isArray(classes) || classes.length === 0) return undefined;
  const rows = (label) => (finite(classCounts?.[label]) ? ` (${count(classCounts[label])})` : '');
  const shown = classes.slice(0, CLASSES_SHOWN).map((label) => `${label}${rows(label)}`);
  const more = classes.length > CLASSES_SHOWN ? `, and ${classes.length - CLASSES_SHOWN} more` : '';
  return `${classes.length}: ${shown.join(', ')}${more}`;
}

function skippedView(rows, examples) {
  const listed = Array.isArray(examples) ? examples : [];
  if (!finite(rows?.skipped) && listed.length === 0) return undefined;
  if (rows?.skipped === 0 && listed.length === 0) return 'none';
  const items = listed.map((e) =>
    h('li', {}, typeof e === 'string' ? e : `${finite(e?.line) ? `line ${e.line}: ` : ''}${e?.reason ?? ''}`),
  );
  const more =
    finite(rows?.skipped) && rows.skipped > listed.length ? ` (the first ${listed.length} below)` : '';
  return h('div', {}, [
    `${count(rows?.skipped ?? listed.length)} rows${listed.length > 0 ? more : ''}`,
    items.length > 0 ? h('ul', { class: 'options skipped' }, items) : null,
  ]);
}

/** The rows of the model summary, as a details list: label, then what model.json says of it. */
export function modelRows(model) {
  const rows = [];
  const add = (label, value) => {
    if (value === undefined || value === null || value === '') return;
    rows.push(h('dt', {}, label), h('dd', { 'data-field': label.toLowerCase() }, value));
  };
  const m = typeof model.metrics === 'object' && model.metrics !== null ? model.metrics : {};
  const on = typeof m.on === 'string' ? ` on ${m.on}` : '';
  const choice = targetChoiceText(model.targetChosenBy);
  add(
    'Target',
    typeof model.target === 'string' ? [mono(model.target), choice ? ` · ${choice}` : ''] : undefined,
  );
  add('Classes', classesText(model.classes, model.classCounts));
  add('Accuracy', percent(m.accuracy) === undefined ? undefined : `${percent(m.accuracy)}${on}`);
  add('AUC', aucText(m.auc));
  add('Log loss', fixed(m.logLoss, 4));
  const r = model.rows ?? {};
  const counted = [
    ['trained', r.trained],
    ['read', r.read],
    ['predicted', r.predicted],
  ].filter(([, n]) => finite(n));
  add(
    'Rows',
    counted.length === 0 ? undefined : counted.map(([what, n]) => `${count(n)} ${what}`).join(' · '),
  );
  add('Skipped', skippedView(r, model.skippedRows));
  add('Delimiter', delimiterText(model.delimiter, model.delimiterChosenBy));
  if (Array.isArray(model.features)) {
    const more = model.features.length > FEATURES_SHOWN ? ', …' : '';
    add('Features', `${model.features.length}: ${model.features.slice(0, FEATURES_SHOWN).join(', ')}${more}`);
  }
  const o = model.optimizer ?? {};
  if (typeof o.converged === 'boolean') {
    const steps = finite(o.iterations) ? ` after ${count(o.iterations)} iterations` : '';
    add('Fit', `${o.method ?? 'optimizer'} ${o.converged ? 'converged' : 'did not converge'}${steps}`);
  }
  if (Array.isArray(model.warnings) && model.warnings.length > 0)
    add(
      'Warnings',
      h(
        'ul',
        { class: 'options' },
        model.warnings.map((w) => h('li', {}, String(w))),
      ),
    );
  return rows;
}

/**
 * The results of the job page `view`: `update` lists the outputs again when the job changed (a new
 * state, a retry) and reads model.json when it changed; `drawProgress` shows the log's progress.
 */
export function jobResults(jobId, view) {
  const part = (selector) => view.querySelector(selector);
  const ui = {
    modelCard: part('.model-card'),
    model: part('.model-card .model-summary'),
    modelNote: part('.model-card .model-note'),
    outputsCard: part('.outputs-card'),
    outputs: part('.outputs-card .outputs'),
    outputsNote: part('.outputs-card .outputs-note'),
    latestNote: part('.outputs-card .latest-note'),
    progressCard: part('.progress-card'),
    progressBar: part('.progress-card progress'),
    progressText: part('.progress-card .progress-text'),
  };
  let listedFor; // the job's version when its outputs were last listed
  let modelKey; // size and time of the model.json summarized

  function note(element, text) {
    element.textContent = text;
    element.hidden = text === '';
  }

  async function updateModel(entry, signal) {
    if (entry === undefined) {
      ui.modelCard.hidden = true;
      modelKey = undefined;
      return;
    }
    const key = `${entry.size}@${entry.updated ?? ''}`;
    if (key === modelKey) return;
    ui.modelCard.hidden = false;
    if (entry.size > MODEL_MAX_BYTES) {
      ui.model.replaceChildren();
      note(ui.modelNote, `model.json is ${bytes(entry.size)}, too large to summarize here: see Outputs.`);
      modelKey = key;
      return;
    }
    try {
      const model = await getJson(outputUrl(jobId, 'model.json'), { signal });
      ui.model.replaceChildren(...modelRows(typeof model === 'object' && model !== null ? model : {}));
      note(ui.modelNote, '');
      modelKey = key;
    } catch (err) {
      if (signal.aborted) throw err;
      note(ui.modelNote, `Could not read model.json: ${err.message}`);
    }
  }

  /**
   * For a succeeded upload's job: whether these are its object's newest results, as the object's
   * _LATEST pointer says (GET /latest), or which job holds newer ones.
   */
  async function updateLatest(job, signal) {
    ui.latestNote.hidden = true;
    if (job.state !== 'SUCCEEDED' || job.source?.kind !== 'object') return;
    const { name, generation } = job.source.object;
    // Only an upload's own job writes under <object>/<generation>/ and moves the pointer; a rerun
    // with parameters or a scheduled run writes under runs/<id>/ and has no say in it.
    if (!String(job.outputUri ?? '').endsWith(`${name}/${generation}/`)) return;
    let latest;
    try {
      latest = await getJson(`latest?object=${encodeURIComponent(name)}`, { signal });
    } catch (err) {
      if (signal.aborted || !(err instanceof ApiError)) throw err;
      return; // no pointer (a rerun's results, or none moved yet): nothing to say
    }
    if (latest.jobId === job.id) {
      ui.latestNote.replaceChildren(`These are the newest results of ${name} (its _LATEST points here).`);
    } else {
      // The pointer names an older generation only when moving it to this job failed (see history).
      const newer = BigInt(latest.generation) > BigInt(generation);
      ui.latestNote.replaceChildren(
        `${newer ? `Newer results of ${name}` : `${name}'s _LATEST was not moved to these newer results; it names`}: generation ${latest.generation}, job `,
        h('a', { href: jobHash(latest.jobId) }, mono(latest.jobId.slice(0, 12))),
        '.',
      );
    }
    ui.latestNote.hidden = false;
  }

  return {
    async update(job, signal) {
      if (job.attempts.length === 0) {
        // Nothing ran, so nothing was written: no panels to leave empty.
        ui.outputsCard.hidden = true;
        ui.modelCard.hidden = true;
        listedFor = undefined;
        return;
      }
      if (listedFor === job.version) return;
      let listing;
      try {
        listing = await getJson(`${jobUrl(jobId)}/outputs`, { signal });
      } catch (err) {
        if (signal.aborted || !(err instanceof ApiError)) throw err;
        ui.outputsCard.hidden = false;
        note(ui.outputsNote, `Could not list the outputs: ${err.message}`);
        return; // listed again at the next refresh
      }
      listedFor = job.version;
      const now = Date.now();
      ui.outputsCard.hidden = listing.outputs.length === 0;
      ui.outputs.replaceChildren(...ordered(listing.outputs).map((o) => outputItem(jobId, o, now)));
      note(ui.outputsNote, listing.more ? `Only the first ${listing.outputs.length} are listed.` : '');
      await updateModel(
        listing.outputs.find((o) => o.name === 'model.json'),
        signal,
      );
      await updateLatest(job, signal);
    },
    /** While the job runs, the newest progress report in its current attempt's log, if any. */
    drawProgress(job, log) {
      const progress = log.attempt === job.attempt && !FINAL.has(job.state) ? log.progress : undefined;
      ui.progressCard.hidden = progress === undefined || job.state !== 'RUNNING';
      if (ui.progressCard.hidden) return;
      if (progress.totalBytes === undefined) {
        ui.progressBar.removeAttribute('value'); // an indeterminate bar: the size is not known
      } else {
        ui.progressBar.max = progress.totalBytes;
        ui.progressBar.value = progress.bytesRead;
      }
      ui.progressText.textContent = progressText(progress);
    },
  };
}
