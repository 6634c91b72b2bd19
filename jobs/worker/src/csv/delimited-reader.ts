// A CsvRecordReader whose delimiter is named, or else detected from the header line: the first
// chunks wait until the header line has ended (or DETECT_LIMIT bytes have come, or the input ends),
// then go to a reader made with the delimiter detected from them.
import { CsvRecordReader, type RecordHandler } from './records.ts';
import { detectDelimiter, type Delimiter, type DelimiterChoice } from './delimiter.ts';

/** Bytes buffered to find the end of the header line before detecting from what has come. */
export const DETECT_LIMIT = 1 << 20;

export class DelimitedReader {
  private readonly onRecord: RecordHandler;
  private reader: CsvRecordReader | undefined;
  private pending: Uint8Array[] = [];
  delimiter: Delimiter = ',';
  chosenBy: DelimiterChoice = 'detected';

  /** `given`: the delimiter DELIMITER names, if it does. */
  constructor(onRecord: RecordHandler, given?: Delimiter) {
    this.onRecord = onRecord;
    if (given !== undefined) this.start(given, 'DELIMITER');
  }

  push(chunk: Uint8Array): void {
    if (this.reader !== undefined) {
      this.reader.push(chunk);
      return;
    }
    this.pending.push(chunk);
    const buffered = Buffer.concat(this.pending);
    const detection = detectDelimiter(buffered);
    if (detection.complete || buffered.length >= DETECT_LIMIT) this.start(detection.delimiter, 'detected');
  }

  end(): void {
    if (this.reader === undefined)
      this.start(detectDelimiter(Buffer.concat(this.pending)).delimiter, 'detected');
    this.reader!.end();
  }

  /** As CsvRecordReader.parseNumbersIn: called once records have come, so the reader exists. */
  parseNumbersIn(columns: readonly number[]): void {
    this.reader!.parseNumbersIn(columns);
  }

  private start(delimiter: Delimiter, chosenBy: DelimiterChoice): void {
    this.delimiter = delimiter;
    this.chosenBy = chosenBy;
    this.reader = new CsvRecordReader(this.onRecord, delimiter.charCodeAt(0));
    for (const chunk of this.pending.splice(0)) this.reader.push(chunk);
  }
}
