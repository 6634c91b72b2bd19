// predictions.csv: the input's header and rows, byte for byte, each followed by `prediction` and the
// probability columns. Rows are copied from a second read of the input using the byte ranges recorded
// by the first, so quoting, number formats and text columns come out exactly as they went in. Rows
// skipped for a missing or non-numeric feature keep their place with empty prediction columns; records
// with the wrong number of fields or broken quoting are not rows of the table and are left out (they
// are listed in model.json). The added columns are separated by the input's own delimiter, so each
// line stays one row of one table. Lines end with LF. Probabilities are written as the shortest
// decimal that reads back as the same double.
import type { Dataset } from './dataset.ts';
import { predictedClass } from './model.ts';
import type { InputSource } from '../io/input.ts';
import type { OutputFile } from '../io/output.ts';
import { IoError } from '../errors.ts';

const BUFFER_BYTES = 1 << 20;

export function predictionColumnNames(columns: readonly string[], classes: readonly string[]): string[] {
  const taken = new Set(columns);
  const unique = (name: string) => {
    let candidate = name;
    for (let n = 2; taken.has(candidate); n++) candidate = `${name}_${n}`;
    taken.add(candidate);
    return candidate;
  };
  const names = [unique('prediction')];
  if (classes.length === 2) names.push(unique('probability'));
  else for (const label of classes) names.push(unique(`probability_${label}`));
  return names;
}

/** `text` as one field: quoted when it holds the delimiter, a quote, a line break or edge spaces. */
export function csvField(text: string, delimiter = ','): string {
  const needsQuotes = /["\r\n]/.test(text) || text.includes(delimiter) || text !== text.trim();
  return needsQuotes ? `"${text.replaceAll('"', '""')}"` : text;
}

export async function writePredictions(
  input: InputSource,
  out: OutputFile,
  ds: Dataset,
  probabilities: { columns: number; values: Float64Array },
): Promise<number> {
  const sink = new ByteSink(out);
  const sep = ds.delimiter;
  const names = predictionColumnNames(ds.columns, ds.classes).map((name) => csvField(name, sep));
  const header = Buffer.from(`${sep}${names.join(sep)}\n`);
  const labels: Buffer[] = ds.classes.map((label) => Buffer.from(`${sep}${csvField(label, sep)}`));
  const emptySuffix = Buffer.from(`${sep.repeat(1 + probabilities.columns)}\n`);
  const { offsets, lengths, rows } = ds.output;
  const { columns, values } = probabilities;
  const total = offsets.length;

  const writeSuffix = (record: number) => {
    if (record < 0) return sink.bytes(header, 0, header.length);
    const row = rows[record];
    if (row < 0) return sink.bytes(emptySuffix, 0, emptySuffix.length);
    const label = labels[predictedClass(values, columns, row)];
    sink.bytes(label, 0, label.length);
    for (let m = 0; m < columns; m++) sink.ascii(`${sep}${values[row * columns + m]}`);
    sink.ascii('\n');
  };

  let record = -1; // -1 is the header
  let start = ds.header.offset;
  let end = start + ds.header.length;
  let position = 0;
  for await (const data of input.read()) {
    const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
    const chunkEnd = position + chunk.length;
    while (record < total && start < chunkEnd) {
      const from = Math.max(start, position);
      const to = Math.min(end, chunkEnd);
      if (to > from) sink.bytes(chunk, from - position, to - position);
      if (end > chunkEnd) break;
      writeSuffix(record);
      record++;
      if (record < total) {
        start = offsets[record];
        end = start + lengths[record];
      }
    }
    position = chunkEnd;
    await sink.drain();
  }
  if (record < total) throw new IoError(`input ${input.uri} was shorter on the second read: it changed`);
  await sink.flush();
  return total;
}

/** Collects small writes into large buffers and hands them to the file with backpressure. */
class ByteSink {
  private readonly out: OutputFile;
  private buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  private readonly full: Buffer[] = [];

  constructor(out: OutputFile) {
    this.out = out;
  }

  bytes(source: Buffer, from: number, to: number): void {
    while (from < to) {
      const n = Math.min(to - from, this.buffer.length - this.used);
      source.copy(this.buffer, this.used, from, from + n);
      this.used += n;
      from += n;
      if (this.used === this.buffer.length) this.rotate();
    }
  }

  ascii(text: string): void {
    if (this.buffer.length - this.used < text.length) this.rotate();
    this.used += this.buffer.write(text, this.used, 'latin1');
  }

  async drain(): Promise<void> {
    for (const buffer of this.full.splice(0)) await this.out.write(buffer);
  }

  async flush(): Promise<void> {
    this.rotate();
    await this.drain();
  }

  private rotate(): void {
    if (this.used === 0) return;
    this.full.push(this.buffer.subarray(0, this.used));
    this.buffer = Buffer.allocUnsafe(BUFFER_BYTES);
    this.used = 0;
  }
}
