// Resources an uploader declares in object metadata (x-goog-meta-pipeline-*). The values are
// the uploader's to choose, so a bad one is reported (quoted, cut short) and otherwise skipped:
// the caller decides whether that fails the job or routes it on what was readable.

import { parseBytes, parseDuration, quote } from '../units.ts';
import type { Resources } from './types.ts';

export const RESOURCE_METADATA_KEYS = {
  cpu: 'pipeline-cpu',
  memory: 'pipeline-memory',
  gpu: 'pipeline-gpu',
  duration: 'pipeline-duration',
};
/** Matched by a rule's `match.runtime`: "vm" or "cloud-run-job". */
export const RUNTIME_METADATA_KEY = 'pipeline-runtime';

const CPU_COUNT = /^\d+(?:\.\d+)?$/;
const GPU = /^([a-z0-9][a-z0-9-]*)(?::(\d{1,3}))?$/;

/** Reads "4", "8GiB", "nvidia-l4" or "nvidia-l4:2", and "3h" from the pipeline-* keys. */
export function declaredFromMetadata(metadata: Record<string, string>): {
  resources: Resources;
  errors: string[];
} {
  const resources: Resources = {};
  const errors: string[] = [];
  const keys = RESOURCE_METADATA_KEYS;
  const readEach = (key: string, read: (text: string) => void) => {
    if (!Object.hasOwn(metadata, key)) return;
    try {
      read(metadata[key].trim());
    } catch (error) {
      errors.push((error as Error).message);
    }
  };
  readEach(keys.cpu, (text) => {
    const cpu = CPU_COUNT.test(text) ? Number(text) : 0;
    if (cpu <= 0) throw new Error(`${keys.cpu}: ${quote(text)} is not a vCPU count like "4"`);
    resources.cpu = cpu;
  });
  readEach(keys.memory, (text) => {
    const bytes = parseBytes(text, keys.memory);
    if (bytes === 0) throw new Error(`${keys.memory}: must be more than zero`);
    resources.memoryBytes = bytes;
  });
  readEach(keys.gpu, (text) => {
    const gpu = GPU.exec(text.toLowerCase());
    const count = gpu?.[2] === undefined ? 1 : Number(gpu[2]);
    if (!gpu || count < 1)
      throw new Error(`${keys.gpu}: ${quote(text)} is not a GPU like "nvidia-l4" or "nvidia-l4:2"`);
    resources.gpu = { type: gpu[1], count };
  });
  readEach(keys.duration, (text) => {
    const seconds = parseDuration(text, keys.duration);
    if (seconds === 0) throw new Error(`${keys.duration}: must be more than zero`);
    resources.expectedSeconds = seconds;
  });
  return { resources, errors };
}
