// `submit FILE...`: each file becomes an object of the input bucket, and so a job. Into the local
// pipeline's input folder by default; into the Cloud Storage bucket of a deployed pipeline when one
// is named (--bucket or $PIPELINE_INPUT_BUCKET). --meta and --param become the object's custom
// metadata: the local folder's sidecar file, or the uploaded object's own.
import fs from 'node:fs';
import path from 'node:path';
import { jobIdFor, PARAM_METADATA_PREFIX } from '@pipeline/core';
import { pipelineUrl } from './api.ts';
import { keyValues, paramsOption, parse } from './args.ts';
import { COMMANDS } from './commands.ts';
import { Failure, say, UsageError, type Io } from './errors.ts';
import { printable } from './format.ts';
import { isLoopback } from './token.ts';
import { PROGRESS_FROM_BYTES, ProgressBar, storageClient, uploadFile } from './upload.ts';

// Cloud Storage's rule for bucket names, roughly: lower case, digits, - _ and dots, 3 to 222 long.
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

interface Submitted {
  file: string;
  bucket: string;
  name: string;
  generation: string;
  job: string;
}

export async function submitCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals: files } = parse(COMMANDS.submit, args);
  if (values.name !== undefined && files.length > 1)
    throw new UsageError('--name works with one FILE only', 'submit');
  const metadata = metadataOf(values);
  for (const file of files)
    if (!fs.statSync(file, { throwIfNoEntry: false })?.isFile())
      throw new UsageError(`${file} is not a file`, 'submit');
  const bucket = inputBucket(values, env);
  const report = (s: Submitted) =>
    say(
      io,
      values.json
        ? JSON.stringify(s)
        : `submitted ${printable(s.file)} as gs://${s.bucket}/${printable(s.name)} (generation ${s.generation}): job ${s.job}`,
    );

  if (bucket === undefined) {
    // The local pipeline's folder layout is the dispatcher's local adapters'.
    const { localSettingsOf } = await import('./settings.ts');
    const { FolderBlobStore } = await import('@pipeline/dispatcher/local/folder-blob-store.ts');
    const { BUCKETS } = await import('@pipeline/dispatcher/local/pipeline.ts');
    const { putObject } = await import('@pipeline/dispatcher/local/put-object.ts');
    const settings = localSettingsOf(env, { dir: values.dir });
    const blobs = new FolderBlobStore(settings.dir, {
      [BUCKETS.input]: path.join(settings.dir, BUCKETS.input),
    });
    for (const file of files) {
      const name = values.name ?? path.basename(file);
      let generation: string;
      try {
        generation = putObject(blobs, name, file, metadata);
      } catch (err) {
        throw new Failure(
          `copying ${file} into ${blobs.folder(BUCKETS.input)} failed: ${(err as Error).message}`,
        );
      }
      report({
        file,
        bucket: BUCKETS.input,
        name,
        generation,
        job: jobIdFor(BUCKETS.input, name, generation),
      });
    }
    return 0;
  }

  const storage = await storageClient(env);
  for (const file of files) {
    const name = values.name ?? path.basename(file);
    const size = fs.statSync(file).size;
    const bar = values.progress || size >= PROGRESS_FROM_BYTES ? new ProgressBar(io, name, size) : undefined;
    const generation = await uploadFile(storage, { bucket, name }, file, metadata, bar);
    report({ file, bucket, name, generation, job: jobIdFor(bucket, name, generation) });
  }
  return 0;
}

/** The objects' custom metadata: --meta as given, --param NAME=VALUE and --runtime in their keys. */
function metadataOf(values: { meta?: string[]; param?: string[]; runtime?: string }): Record<string, string> {
  const metadata = keyValues('submit', 'meta', values.meta);
  for (const [name, value] of Object.entries(paramsOption('submit', values.param))) {
    const key = `${PARAM_METADATA_PREFIX}${name}`;
    if (metadata[key] !== undefined && metadata[key] !== value)
      throw new UsageError(`--param ${name} and --meta ${key} say different values`, 'submit');
    metadata[key] = value;
  }
  if (values.runtime !== undefined) metadata['pipeline-runtime'] = values.runtime;
  return metadata;
}

/**
 * The Cloud Storage bucket to upload into, or undefined for the local input folder. A pipeline URL
 * that is not on this machine with no bucket named is a mistake: the files would land in a folder
 * that pipeline never sees.
 */
function inputBucket(
  values: { bucket?: string; dir?: string; url?: string },
  env: NodeJS.ProcessEnv,
): string | undefined {
  const given = values.bucket ?? env.PIPELINE_INPUT_BUCKET;
  if (given === undefined || given === '') {
    const url = pipelineUrl(values.url, env, 'submit');
    if (!isLoopback(url))
      throw new UsageError(
        `the pipeline at ${url.origin} reads its input bucket: name it with --bucket or $PIPELINE_INPUT_BUCKET (terraform output input_bucket)`,
        'submit',
      );
    return undefined;
  }
  if (values.dir !== undefined)
    throw new UsageError('--dir is for the local pipeline, not with a bucket', 'submit');
  const bucket = given.replace(/^gs:\/\//, '').replace(/\/$/, '');
  if (!BUCKET_NAME.test(bucket))
    throw new UsageError(`${JSON.stringify(given)} is not a bucket name`, 'submit');
  return bucket;
}
