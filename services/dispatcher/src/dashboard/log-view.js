// One attempt's log on a job's page, followed as it grows: each JSON line the worker wrote drawn as
// its time, severity, message and other fields, any other line as text, and the raw text behind a
// toggle. Following it also finds the worker's latest progress report (a big input's bytes and rows
// read so far), which the page shows while the job runs. Lines are data: drawn as text only.
/* global TextDecoder, fetch, URLSearchParams */
import { FINAL, bytes, failure, h, jobUrl, timeFormat, when } from './ui.js';
import { fieldText, parseLogLine, progressOf, severityLook } from './text.js';

const LOG_TAIL_BYTES = 64 * 1024;
const LOG_KEEP_CHARS = 512 * 1024; // a long log keeps its newest half million characters on the page
const LOG_KEEP_LINES = 5000; // and its newest lines drawn

function timeOf(value) {
  const t = typeof value === 'number' ? value : Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

function lineElement(entry) {
  if (entry.kind === 'text')
    return h('div', { class: 'log-line text' }, h('span', { class: 'log-text' }, entry.text));
  const t = entry.time === undefined ? undefined : timeOf(entry.time);
  const fields = entry.fields.map(([key, value]) =>
    h('span', { class: 'log-field' }, h('span', { class: 'key' }, key), '=', fieldText(value)),
  );
  return h(
    'div',
    { class: `log-line sev-${severityLook(entry.severity)}` },
    h(
      'span',
      { class: 'log-time' },
      t === undefined
        ? ''
        : h('time', { datetime: new Date(t).toISOString(), title: when(t) }, timeFormat.format(t)),
    ),
    h('span', { class: 'log-sev' }, entry.severity),
    h(
      'span',
      { class: 'log-body' },
      entry.message === '' ? null : h('span', { class: 'log-msg' }, entry.message),
      fields.length === 0 ? null : h('span', { class: 'log-fields' }, fields),
    ),
  );
}

/**
 * Follows one attempt's log in `card` (the page's log section): its last LOG_TAIL_BYTES first, then
 * whatever was written since (from X-Next-Offset), until the attempt has ended and the log has been
 * read to its end.
 */
export function logFollower(jobId, card) {
  const meta = card.querySelector('.log-meta');
  const lines = card.querySelector('.log-lines');
  const raw = card.querySelector('pre.log');
  const toggle = card.querySelector('.log-toggle');
  // { attempt, next, size, omitted, decoder, chars, done, pending, fragment, progress }
  let stream;
  let showRaw = false;

  function showBody(shown) {
    toggle.hidden = !shown;
    lines.hidden = !shown || showRaw;
    raw.hidden = !shown || !showRaw;
  }
  toggle.addEventListener('click', () => {
    showRaw = !showRaw;
    toggle.setAttribute('aria-pressed', String(showRaw));
    showBody(true);
    const shown = showRaw ? raw : lines;
    shown.scrollTop = shown.scrollHeight;
  });

  const say = (text) => {
    meta.textContent = text;
  };

  function drawLines(complete) {
    const drawn = [];
    for (const line of complete) {
      if (stream.fragment) {
        stream.fragment = false; // the tail began inside this line: its start is not on the page
        continue;
      }
      if (line.trim() === '') continue;
      const entry = parseLogLine(line);
      stream.progress = progressOf(entry) ?? stream.progress;
      drawn.push(lineElement(entry));
    }
    lines.append(...drawn);
    for (let extra = lines.childElementCount - LOG_KEEP_LINES; extra > 0; extra--)
      lines.firstElementChild.remove();
  }

  function show(text, ended) {
    const view = showRaw ? raw : lines;
    const atBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
    if (text !== '') {
      raw.append(text);
      stream.chars += text.length;
      if (stream.chars > LOG_KEEP_CHARS) {
        raw.textContent = raw.textContent.slice(-LOG_KEEP_CHARS);
        stream.chars = LOG_KEEP_CHARS;
      }
    }
    const parts = (stream.pending + text).split('\n');
    stream.pending = ended ? '' : parts.pop();
    drawLines(parts);
    if (atBottom) view.scrollTop = view.scrollHeight; // keep following, unless the reader scrolled up
  }

  return {
    /** Whether the attempt shown has ended and its log has been read to the end. */
    get done() {
      return stream?.done ?? true;
    },
    /** The newest progress report in the log of the attempt shown, if it made any. */
    get progress() {
      return stream?.progress;
    },
    /** Which attempt is shown. */
    get attempt() {
      return stream?.attempt;
    },
    async update(job, chosen, signal) {
      const attempt = chosen ?? job.attempts.at(-1)?.attempt;
      if (attempt === undefined) {
        stream = undefined;
        raw.replaceChildren();
        lines.replaceChildren();
        showBody(false);
        say(FINAL.has(job.state) ? '· none: no attempt ran' : '· waiting for the first attempt');
        return;
      }
      showBody(true);
      if (stream?.attempt !== attempt) {
        stream = {
          attempt,
          size: 0,
          omitted: 0,
          decoder: new TextDecoder(),
          chars: 0,
          done: false,
          pending: '',
          fragment: false,
          progress: undefined,
        };
        raw.replaceChildren();
        lines.replaceChildren();
      }
      if (stream.done) return;
      const q = new URLSearchParams({ attempt: String(attempt) });
      if (stream.next === undefined) q.set('tail', String(LOG_TAIL_BYTES));
      else q.set('offset', String(stream.next));
      const res = await fetch(`${jobUrl(jobId)}/logs?${q}`, { cache: 'no-store', signal });
      const ended = FINAL.has(job.state) || attempt < job.attempt;
      if (res.status === 404) {
        stream.done = ended;
        say(`· attempt ${attempt} · ${ended ? 'no log was kept' : 'no output yet'}`);
        return;
      }
      if (!res.ok) throw await failure(res);
      const data = await res.arrayBuffer();
      const next = Number(res.headers.get('X-Next-Offset'));
      const size = Number(res.headers.get('X-Log-Size'));
      if (stream.next === undefined) {
        stream.omitted = Math.max(0, next - data.byteLength);
        stream.fragment = stream.omitted > 0;
      }
      stream.next = next;
      stream.size = size;
      stream.done = (ended || FINAL.has(res.headers.get('X-Job-State'))) && next >= size;
      show(stream.decoder.decode(data, { stream: !stream.done }), stream.done);
      const part = stream.omitted > 0 ? ` · last ${bytes(size - stream.omitted)} shown` : '';
      say(`· attempt ${attempt} · ${bytes(size)}${part} · ${stream.done ? 'ended' : 'following'}`);
    },
  };
}
