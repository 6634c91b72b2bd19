// A file into the local input folder, whole or not at all: the watcher must never see half of it.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { objectPath, type FolderBlobStore } from './folder-blob-store.ts';

/** Copies a file into the input folder under a hidden name, writes its metadata, then renames it into place. */
export function putObject(
  blobs: FolderBlobStore,
  name: string,
  file: string,
  metadata: Record<string, string>,
): string {
  const target = objectPath(blobs.folder('input'), name);
  const temporary = path.join(blobs.folder('input'), `.submit-${randomBytes(6).toString('hex')}`);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(file, temporary);
  const sidecar = blobs.sidecarPath('input', name);
  if (Object.keys(metadata).length > 0) {
    fs.mkdirSync(path.dirname(sidecar), { recursive: true });
    fs.writeFileSync(sidecar, JSON.stringify({ metadata }));
  } else {
    fs.rmSync(sidecar, { force: true });
  }
  fs.renameSync(temporary, target);
  return fs.statSync(target, { bigint: true }).mtimeNs.toString();
}
