// `npm run box`: the cloud in a box (test/box/cloud-box.ts), started and left running for a person to
// use: the dispatcher's image on loopback with the emulators, the doubles and the Docker engine, as
// `npm run e2e:cloud` runs it. It prints how to upload and where to look, and stops everything it
// started on Ctrl-C (SIGINT) or SIGTERM; one that comes while the box is starting stops it once
// started (the emulators and containers it is making would be left running otherwise).
// As in the tests: loopback only, and no client looks for a metadata server of its own (the box's
// Pub/Sub client would otherwise ask metadata.google.internal whether it runs on Google Cloud).
import '../test/support/loopback-only.ts';
import { boxImages, CloudBox, INPUT_BUCKET, OUTPUT_BUCKET } from '../test/box/cloud-box.ts';

let box: CloudBox | undefined;
let stopRequested = false;
const stop = () => {
  if (stopRequested && box === undefined) return;
  stopRequested = true;
  if (box === undefined) {
    process.stderr.write('box: will stop as soon as it has started\n');
    return;
  }
  process.stderr.write('box: stopping\n');
  const stopping = box;
  box = undefined;
  void stopping.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`box: stopping failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

process.stderr.write('box: building (or finding) the images...\n');
box = await CloudBox.start(await boxImages());
if (stopRequested) stop();
else {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`box: the dispatcher's image listens on ${box.url} (the dashboard: ${box.url}/)`);
  say('box: in another shell, upload a file as a user would:');
  say(
    `  export PIPELINE_URL=${box.url} STORAGE_EMULATOR_HOST=${box.gcs.url} GCE_METADATA_HOST=${box.metadataHost}`,
  );
  say(`  npx pipeline submit jobs/worker/data/financial_statements.csv --bucket ${INPUT_BUCKET}`);
  say(
    `  npx pipeline submit jobs/worker/data/wine.csv --bucket ${INPUT_BUCKET} --runtime vm --param TARGET_COLUMN=cultivar`,
  );
  say(`box: outputs land in the Storage double's gs://${OUTPUT_BUCKET} (npx pipeline job ID shows them)`);
  say('box: Ctrl-C stops the box and everything it started');
}
