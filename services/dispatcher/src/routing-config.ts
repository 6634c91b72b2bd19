// Reads the routing rules from a JSON or YAML file (by its extension) and validates them; an error
// names the file, the rule and the field.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { parseRoutingConfig, type RoutingConfig } from '@pipeline/core';

export class RoutingFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RoutingFileError';
  }
}

/** The YAML parser, loaded only for a YAML config: a JSON config should not pay for it at start-up. */
function parseYaml(text: string): unknown {
  const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return parse(text);
}

export function loadRoutingConfig(file: string): RoutingConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new RoutingFileError(`cannot read the routing config ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = ['.yaml', '.yml'].includes(path.extname(file).toLowerCase()) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new RoutingFileError(
      `${file} is not valid ${path.extname(file).slice(1).toUpperCase() || 'JSON'}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    return parseRoutingConfig(raw);
  } catch (err) {
    throw new RoutingFileError(`${file}: ${(err as Error).message}`, { cause: err });
  }
}
