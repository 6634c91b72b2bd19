// Append-only typed arrays that double when full. For per-record bookkeeping (a few bytes a record);
// the feature matrix itself lives in fixed-size blocks and is never copied.

type TypedArrayConstructor<T> = new (length: number) => T;

export class Growable<T extends Float64Array | Int32Array> {
  private data: T;
  private count = 0;
  private readonly make: TypedArrayConstructor<T>;

  constructor(make: TypedArrayConstructor<T>, initialCapacity = 1024) {
    this.make = make;
    this.data = new make(initialCapacity);
  }

  get length(): number {
    return this.count;
  }

  push(value: number): void {
    if (this.count === this.data.length) {
      const bigger = new this.make(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.count++] = value;
  }

  /** The values pushed so far, as a view (no copy). */
  view(): T {
    return this.data.subarray(0, this.count) as T;
  }
}
