// The event intake of the local mode: the input folder is scanned a few times a second, and a file
// becomes an OBJECT_FINALIZE event once it has stopped changing (same size and modification time for
// `quietMs`), so a file still being copied in never starts a job. Names starting with "." are never
// objects: `pipeline submit` writes under such a name and renames the file into place when complete.
// Every generation is announced once per watcher; the ledger makes announcements after a restart
// harmless (the same generation is the same job).
import fs from 'node:fs';
import path from 'node:path';
import type { StorageEvent } from '@pipeline/core';
import type { FolderBlobStore } from './folder-blob-store.ts';

interface Seen {
  size: bigint;
  mtimeNs: bigint;
  since: number;
  announced: boolean;
}

export interface InputWatcherOptions {
  blobs: FolderBlobStore;
  bucket: string;
  onEvent: (event: StorageEvent) => Promise<void>;
  onError: (err: unknown) => void;
  intervalMs?: number;
  quietMs?: number;
}

export class InputWatcher {
  private readonly options: InputWatcherOptions;
  private readonly seen = new Map<string, Seen>();
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;

  constructor(options: InputWatcherOptions) {
    this.options = options;
  }

  start(): void {
    const interval = this.options.intervalMs ?? 200;
    const tick = () => {
      this.scanning = this.scan()
        .catch(this.options.onError)
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, interval);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.scanning;
  }

  /** One pass over the folder; exposed for tests. */
  async scan(): Promise<void> {
    const { blobs, bucket, onEvent } = this.options;
    const quietMs = this.options.quietMs ?? 300;
    const folder = blobs.folder(bucket);
    const now = Date.now();
    const present = new Set<string>();
    for (const name of await listFiles(folder)) {
      present.add(name);
      let stats: fs.BigIntStats;
      try {
        stats = await fs.promises.stat(path.join(folder, name), { bigint: true });
      } catch {
        continue; // removed while we looked
      }
      const previous = this.seen.get(name);
      if (previous === undefined || previous.size !== stats.size || previous.mtimeNs !== stats.mtimeNs) {
        this.seen.set(name, { size: stats.size, mtimeNs: stats.mtimeNs, since: now, announced: false });
        continue;
      }
      if (previous.announced || now - previous.since < quietMs) continue;
      try {
        const object = await blobs.stat(bucket, name);
        if (object === undefined || object.generation !== stats.mtimeNs.toString()) continue;
        await onEvent({ eventType: 'OBJECT_FINALIZE', object });
        previous.announced = true;
      } catch (err) {
        this.options.onError(err); // not announced: the next scan tries again
      }
    }
    for (const name of this.seen.keys()) if (!present.has(name)) this.seen.delete(name);
  }
}

/** Files under `folder`, as object names with "/" separators, skipping anything whose name starts with ".". */
async function listFiles(folder: string): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(folder, { withFileTypes: true, recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const names: string[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const relative = path.relative(folder, path.join(entry.parentPath, entry.name));
    if (relative.split(path.sep).some((segment) => segment.startsWith('.'))) continue;
    names.push(relative.split(path.sep).join('/'));
  }
  return names;
}
