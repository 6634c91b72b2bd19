// The permission table: every Google API call the pipeline makes, the IAM permission it needs, who
// makes it, on what, and the page of Google's documentation the permission comes from; then the
// permissions of each predefined role terraform grants (only those that matter here). One place,
// read by permissions.test.ts, which checks terraform's grants against it, and by the README.
//
// A call's `grant` names the terraform grant that should cover it; the test finds the covering grant
// itself and fails unless it is that one, and the only one. Calls granted outside terraform (Google's
// own service agent roles, the deployer's roles, public resources) say so in `outsideTerraform`.

/** Who calls: a service account of terraform's, a Google service agent, or the person deploying. */
export type Caller =
  | 'dispatcher'
  | 'worker'
  | 'push'
  | 'build'
  | 'pubsub-agent'
  | 'gcs-agent'
  | 'run-agent'
  | 'scheduler-agent'
  | 'deployer';

/** How each caller appears as `member` in terraform. */
export const MEMBERS: Partial<Record<Caller, string>> = {
  dispatcher: '${local.dispatcher_sa_member}',
  worker: '${local.worker_sa_member}',
  push: '${local.push_sa_member}',
  build: '${local.build_sa_member}',
  'pubsub-agent': '${local.pubsub_service_member}',
  'gcs-agent': 'serviceAccount:${data.google_storage_project_service_account.gcs.email_address}',
};

export interface CallResource {
  /** The terraform resource the call acts on, or `project` for the project itself; a grant on it or
   * on the project covers the call. Executions and tasks count as the job's (they are its children). */
  terraform: string;
  /** resource.type and resource.name as IAM conditions see them, with terraform's ${...} in them.
   * https://cloud.google.com/iam/docs/conditions-resource-attributes */
  type: string;
  name: string;
}

/** Which deployments a call happens in (the test runs every scenario of permissions.test.ts). */
export type When = 'always' | 'external-ip' | 'public-image' | 'own-image';

export interface Call {
  id: string;
  /** The client call, or the command. */
  what: string;
  /** The file that makes it, and text that shows it does (the test checks the file holds it). */
  code: { file: string; text: string };
  caller: Caller;
  permission: string;
  resource: CallResource;
  /** The documentation page that says which permission the call needs. */
  doc: string;
  when?: When;
  /** The terraform grant that covers the call. */
  grant?: string;
  /** Why terraform grants nothing for it. */
  outsideTerraform?: string;
}

const PROJECT: CallResource = {
  terraform: 'project',
  type: 'cloudresourcemanager.googleapis.com/Project',
  name: 'projects/${var.project_id}',
};
const VM: CallResource = {
  terraform: 'project',
  type: 'compute.googleapis.com/Instance',
  name: 'projects/${var.project_id}/zones/${var.zone}/instances/${local.vm_name_prefix}0123456789abcdef0123-a1',
};
const VM_DISK: CallResource = {
  terraform: 'project',
  type: 'compute.googleapis.com/Disk',
  name: 'projects/${var.project_id}/zones/${var.zone}/disks/${local.vm_name_prefix}0123456789abcdef0123-a1',
};
// The bucket's own name is a coalesce of variables, which these tests do not evaluate; the one
// condition on objects (dispatcher_moves_latest) reads only the end of the name.
const bucket = (name: string, object = 'some/object'): CallResource => ({
  terraform: `google_storage_bucket.${name}`,
  type: 'storage.googleapis.com/Object',
  name: `projects/_/buckets/the-${name}-bucket/objects/${object}`,
});
const topic = (name: string): CallResource => ({
  terraform: `google_pubsub_topic.${name}`,
  type: 'pubsub.googleapis.com/Topic',
  name: `projects/\${var.project_id}/topics/\${google_pubsub_topic.${name}.name}`,
});
const subscription = (name: string): CallResource => ({
  terraform: `google_pubsub_subscription.${name}`,
  type: 'pubsub.googleapis.com/Subscription',
  name: `projects/\${var.project_id}/subscriptions/${name}`,
});
const serviceAccount = (name: string): CallResource => ({
  terraform: `google_service_account.${name}`,
  type: 'iam.googleapis.com/ServiceAccount',
  name: `projects/\${var.project_id}/serviceAccounts/${name}`,
});
const WORKER_JOB: CallResource = {
  terraform: 'google_cloud_run_v2_job.worker',
  type: 'run.googleapis.com/Job',
  name: 'projects/${var.project_id}/locations/${var.region}/jobs/${local.job_name}',
};
const REPOSITORY: CallResource = {
  terraform: 'google_artifact_registry_repository.images',
  type: 'artifactregistry.googleapis.com/Repository',
  name: 'projects/${var.project_id}/locations/${var.region}/repositories/${var.name_prefix}',
};
const LEDGER: CallResource = {
  terraform: 'project',
  type: 'firestore.googleapis.com/Database',
  name: 'projects/${var.project_id}/databases/(default)',
};

const RUN_LAUNCHER = 'services/dispatcher/src/gcp/run-launcher.ts';
const COMPUTE_LAUNCHER = 'services/dispatcher/src/gcp/compute-launcher.ts';
const LEDGER_CODE = 'services/dispatcher/src/gcp/firestore-ledger.ts';
const DEAD_LETTERS = 'services/dispatcher/src/gcp/dead-letters.ts';
const STARTUP = 'services/dispatcher/src/gcp/vm-startup.sh';
const AGENT_PORTS = 'jobs/agent/src/gcp-ports.ts';
const AGENT_STORAGE = 'jobs/agent/src/gcs.ts';

const DOC = {
  runJob: 'https://cloud.google.com/run/docs/reference/rest/v1/namespaces.jobs/run',
  runPermissions: 'https://cloud.google.com/run/docs/reference/iam/permissions',
  getExecution: 'https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/get',
  listExecutions:
    'https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/list',
  createVm: 'https://cloud.google.com/compute/docs/access/create-enable-service-accounts-for-instances',
  insert: 'https://cloud.google.com/compute/docs/reference/rest/v1/instances/insert',
  computeRest: 'https://cloud.google.com/compute/docs/reference/rest/v1',
  storage: 'https://cloud.google.com/storage/docs/access-control/iam-json',
  storageOverwrite: 'https://cloud.google.com/storage/docs/access-control/iam-permissions',
  firestore: 'https://cloud.google.com/firestore/docs/security/iam',
  pubsub: 'https://cloud.google.com/pubsub/docs/access-control',
  deadLetter: 'https://cloud.google.com/pubsub/docs/dead-letter-topics',
  push: 'https://cloud.google.com/pubsub/docs/create-push-subscription',
  gcsNotify: 'https://cloud.google.com/storage/docs/reporting-changes',
  invoke: 'https://cloud.google.com/run/docs/authenticating/service-to-service',
  logging: 'https://cloud.google.com/logging/docs/access-control',
  registry: 'https://cloud.google.com/artifact-registry/docs/access-control',
  build: 'https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts',
  buildRoles: 'https://cloud.google.com/build/docs/iam-roles-permissions',
  serviceUsage: 'https://cloud.google.com/service-usage/docs/access-control',
  scheduler: 'https://cloud.google.com/scheduler/docs/http-target-auth',
  runAgent: 'https://cloud.google.com/artifact-registry/docs/integrate-cloud-run',
  publicImages: 'https://cloud.google.com/compute/docs/images',
};

/** The compute-launcher's insert: one call, several permissions, each checked on its own resource. */
const insert = (
  id: string,
  permission: string,
  text: string,
  resource: CallResource = VM,
  grant = 'google_project_iam_member.dispatcher_launches_vms',
): Call => ({
  id,
  what: 'InstancesClient.insert',
  code: { file: COMPUTE_LAUNCHER, text },
  caller: 'dispatcher',
  permission,
  resource,
  doc: DOC.createVm,
  grant,
});

export const CALLS: Call[] = [
  // --- dispatcher: Cloud Run jobs (run-launcher.ts) ---------------------------------------------
  {
    id: 'run-job',
    what: 'JobsClient.runJob',
    code: { file: RUN_LAUNCHER, text: 'client.runJob(' },
    caller: 'dispatcher',
    permission: 'run.jobs.run',
    resource: WORKER_JOB,
    doc: DOC.runJob,
    grant: 'google_cloud_run_v2_job_iam_member.dispatcher_runs_worker',
  },
  {
    id: 'run-job-overrides',
    what: 'JobsClient.runJob with overrides (env, args, taskCount, timeout)',
    code: { file: RUN_LAUNCHER, text: 'containerOverrides: [containerOverride]' },
    caller: 'dispatcher',
    permission: 'run.jobs.runWithOverrides',
    resource: WORKER_JOB,
    doc: DOC.runJob,
    grant: 'google_cloud_run_v2_job_iam_member.dispatcher_runs_worker',
  },
  {
    id: 'get-execution',
    what: 'ExecutionsClient.getExecution (inspect, the reconciler)',
    code: { file: RUN_LAUNCHER, text: 'client.getExecution(' },
    caller: 'dispatcher',
    permission: 'run.executions.get',
    resource: WORKER_JOB,
    doc: DOC.getExecution,
    grant: 'google_cloud_run_v2_job_iam_member.dispatcher_reads_worker_executions',
  },
  {
    id: 'list-executions',
    what: "ExecutionsClient.listExecutions (find: an attempt's execution after RunJob's answer was lost)",
    code: { file: RUN_LAUNCHER, text: 'client.listExecutions(' },
    caller: 'dispatcher',
    permission: 'run.executions.list',
    resource: WORKER_JOB,
    doc: DOC.listExecutions,
    grant: 'google_cloud_run_v2_job_iam_member.dispatcher_reads_worker_executions',
  },
  {
    id: 'list-tasks',
    what: "TasksClient.listTasks (a failed execution's exit code)",
    code: { file: RUN_LAUNCHER, text: 'client.listTasks(' },
    caller: 'dispatcher',
    permission: 'run.tasks.list',
    resource: WORKER_JOB,
    doc: DOC.runPermissions,
    grant: 'google_cloud_run_v2_job_iam_member.dispatcher_reads_worker_executions',
  },
  {
    id: 'cancel-execution',
    what: 'ExecutionsClient.cancelExecution',
    code: { file: RUN_LAUNCHER, text: 'client.cancelExecution(' },
    caller: 'dispatcher',
    permission: 'run.executions.cancel',
    resource: WORKER_JOB,
    doc: DOC.runPermissions,
    grant: 'google_cloud_run_v2_job_iam_member.dispatcher_runs_worker',
  },
  {
    id: 'get-run-operation',
    what: "JobsClient.checkRunJobProgress (operations.get, when RunJob's answer named no execution)",
    code: { file: RUN_LAUNCHER, text: 'client.checkRunJobProgress(' },
    caller: 'dispatcher',
    permission: 'run.operations.get',
    // projects/P/locations/R/operations/ID: not a child of the job.
    resource: PROJECT,
    doc: DOC.runPermissions,
    grant: 'google_project_iam_member.dispatcher_project_reads',
  },
  // --- dispatcher: Compute Engine (compute-launcher.ts, reaper.ts) ------------------------------
  insert('insert-instance', 'compute.instances.create', 'instances.insert('),
  insert('insert-boot-disk', 'compute.disks.create', 'initializeParams', VM_DISK),
  insert('insert-labels', 'compute.instances.setLabels', 'labels: {'),
  insert('insert-metadata', 'compute.instances.setMetadata', "'startup-script'"),
  insert('insert-service-account', 'compute.instances.setServiceAccount', 'serviceAccounts: ['),
  insert('insert-shielded-vm', 'compute.instances.updateShieldedVmConfig', 'shieldedInstanceConfig'),
  insert(
    'insert-subnet',
    'compute.subnetworks.use',
    '{ subnetwork: this.settings.subnetwork }',
    {
      terraform: 'google_compute_subnetwork.vms',
      type: 'compute.googleapis.com/Subnetwork',
      name: 'projects/${var.project_id}/regions/${var.region}/subnetworks/${google_compute_subnetwork.vms.name}',
    },
    'google_compute_subnetwork_iam_member.dispatcher_uses_subnet',
  ),
  {
    ...insert(
      'insert-external-ip',
      'compute.subnetworks.useExternalIp',
      'accessConfigs',
      {
        terraform: 'google_compute_subnetwork.vms',
        type: 'compute.googleapis.com/Subnetwork',
        name: 'projects/${var.project_id}/regions/${var.region}/subnetworks/${google_compute_subnetwork.vms.name}',
      },
      'google_compute_subnetwork_iam_member.dispatcher_uses_external_ips',
    ),
    when: 'external-ip',
  },
  {
    ...insert('insert-own-image', 'compute.images.useReadOnly', 'sourceImage', {
      terraform: 'project',
      type: 'compute.googleapis.com/Image',
      name: 'projects/${var.project_id}/global/images/${var.vm_image_family}-20250101000000',
    }),
    when: 'own-image',
    grant: 'google_project_iam_member.dispatcher_uses_own_images',
  },
  {
    ...insert('insert-public-image', 'compute.images.useReadOnly', 'sourceImage', {
      terraform: 'project',
      type: 'compute.googleapis.com/Image',
      name: 'projects/cos-cloud/global/images/cos-stable-121',
    }),
    when: 'public-image',
    grant: undefined,
    doc: DOC.publicImages,
    outsideTerraform: 'cos-cloud is a public image project: any authenticated principal may use its images.',
  },
  {
    ...insert(
      'insert-act-as-worker',
      'iam.serviceAccounts.actAs',
      'serviceAccounts: [',
      serviceAccount('worker'),
    ),
    grant: 'google_service_account_iam_member.dispatcher_acts_as_worker',
  },
  {
    id: 'wait-zone-operation',
    what: 'ZoneOperationsClient.wait (the insert)',
    code: { file: COMPUTE_LAUNCHER, text: 'operations.wait(' },
    caller: 'dispatcher',
    permission: 'compute.zoneOperations.get',
    resource: PROJECT,
    doc: `${DOC.computeRest}/zoneOperations/wait`,
    grant: 'google_project_iam_member.dispatcher_project_reads',
  },
  {
    id: 'get-instance',
    what: 'InstancesClient.get (inspect)',
    code: { file: COMPUTE_LAUNCHER, text: 'instances.get(' },
    caller: 'dispatcher',
    permission: 'compute.instances.get',
    resource: VM,
    doc: `${DOC.computeRest}/instances/get`,
    grant: 'google_project_iam_member.dispatcher_launches_vms',
  },
  {
    id: 'delete-instance',
    what: 'InstancesClient.delete (cancel, the reaper)',
    code: { file: 'services/dispatcher/src/gcp/reaper.ts', text: 'client.delete(' },
    caller: 'dispatcher',
    permission: 'compute.instances.delete',
    resource: VM,
    doc: `${DOC.computeRest}/instances/delete`,
    grant: 'google_project_iam_member.dispatcher_launches_vms',
  },
  {
    id: 'delete-instance-boot-disk',
    what: 'InstancesClient.delete (cancel, the reaper): the boot disk, autoDelete, goes with the VM',
    code: { file: 'services/dispatcher/src/gcp/reaper.ts', text: 'client.delete(' },
    caller: 'dispatcher',
    permission: 'compute.disks.delete',
    resource: VM_DISK,
    doc: `${DOC.computeRest}/instances/delete`,
    grant: 'google_project_iam_member.dispatcher_launches_vms',
  },
  {
    id: 'get-region',
    what: "RegionsClient.get (the region's quotas, for the queue)",
    code: { file: 'services/dispatcher/src/gcp/region-quotas.ts', text: 'client.get({ project, region }' },
    caller: 'dispatcher',
    permission: 'compute.regions.get',
    // projects/P/regions/R: not among the resource types IAM conditions list for Compute.
    resource: PROJECT,
    doc: `${DOC.computeRest}/regions/get`,
    grant: 'google_project_iam_member.dispatcher_project_reads',
  },
  {
    id: 'list-instances',
    what: 'InstancesClient.list (the reaper, filtered on labels.pipeline)',
    code: { file: 'services/dispatcher/src/gcp/reaper.ts', text: 'client.list(' },
    caller: 'dispatcher',
    permission: 'compute.instances.list',
    resource: PROJECT,
    doc: `${DOC.computeRest}/instances/list`,
    grant: 'google_project_iam_member.dispatcher_project_reads',
  },
  // --- dispatcher: Cloud Storage (gcs-blob-store.ts) --------------------------------------------
  {
    id: 'stat-input',
    what: 'File.getMetadata on an input object (intake, POST /jobs)',
    code: { file: 'services/dispatcher/src/gcp/gcs-blob-store.ts', text: '.getMetadata()' },
    caller: 'dispatcher',
    permission: 'storage.objects.get',
    resource: bucket('input'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.dispatcher_reads_input',
  },
  {
    id: 'list-input',
    what: 'Bucket.getFiles a page at a time (POST /backfill, and the reconcile passes that continue it)',
    code: { file: 'services/dispatcher/src/gcp/gcs-blob-store.ts', text: 'maxResults: pageSize' },
    caller: 'dispatcher',
    permission: 'storage.objects.list',
    resource: bucket('input'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.dispatcher_reads_input',
  },
  {
    id: 'read-output',
    what: "File.download of a task log (GET /jobs/:id/logs) and of an attempt's _SUCCESS (reconciler)",
    code: { file: 'services/dispatcher/src/reconciler.ts', text: '_SUCCESS`), 0, 64 * 1024)' },
    caller: 'dispatcher',
    permission: 'storage.objects.get',
    resource: bucket('output'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.dispatcher_reads_output',
  },
  {
    id: 'list-output',
    what: "Bucket.getFiles of a job's prefix (GET /jobs/:id/outputs)",
    code: { file: 'services/dispatcher/src/gcp/gcs-blob-store.ts', text: '.getFiles({ prefix' },
    caller: 'dispatcher',
    permission: 'storage.objects.list',
    resource: bucket('output'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.dispatcher_reads_output',
  },
  ...(
    [
      ['latest-create', 'storage.objects.create'],
      // ifGenerationMatch on an existing _LATEST replaces it: an overwrite checks delete too.
      ['latest-replace', 'storage.objects.delete'],
    ] as const
  ).map(([id, permission]) => ({
    id,
    what: "File.save of an object's _LATEST pointer with ifGenerationMatch (a success)",
    code: {
      file: 'services/dispatcher/src/gcp/gcs-blob-store.ts',
      text: 'preconditionOpts: { ifGenerationMatch',
    },
    caller: 'dispatcher' as const,
    permission,
    resource: bucket('output', 'sales/q3.csv/_LATEST'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.dispatcher_moves_latest',
  })),
  {
    id: 'batch-manifest-create',
    what: "File.save of a batch's manifest with ifGenerationMatch 0 (batch-launch.ts: create if absent)",
    code: {
      file: 'services/dispatcher/src/gcp/gcs-blob-store.ts',
      text: 'preconditionOpts: { ifGenerationMatch',
    },
    caller: 'dispatcher' as const,
    permission: 'storage.objects.create',
    resource: {
      terraform: 'google_storage_bucket.output',
      type: 'storage.googleapis.com/Object',
      name: 'projects/_/buckets/${google_storage_bucket.output.name}/objects/_pipeline/batches/batch-0123456789abcdef01234567.json',
    },
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.dispatcher_writes_batch_manifests',
  },
  // --- dispatcher: the Firestore ledger (firestore-ledger.ts) -----------------------------------
  ...(
    [
      ['ledger-create', 'DocumentReference.create (the claim)', 'ref.create(', 'datastore.entities.create'],
      ['ledger-get', 'DocumentReference.get', 'ref.get()', 'datastore.entities.get'],
      [
        'ledger-update',
        'update with a lastUpdateTime precondition',
        'snapshot.ref.update(',
        'datastore.entities.update',
      ],
      [
        'capacity-create',
        "the launch queue's capacity record, first written",
        'this.capacity.create(',
        'datastore.entities.create',
      ],
      [
        'outbox-write',
        'WriteBatch.commit (a job change with its events: the job and its outbox documents at once)',
        'await batch.commit()',
        'datastore.entities.create',
      ],
      [
        'outbox-delete',
        'WriteBatch.delete (published events leave the outbox)',
        'batch.delete(this.outbox.doc(',
        'datastore.entities.delete',
      ],
      ['capacity-get', "the capacity record's read", 'this.capacity.get()', 'datastore.entities.get'],
      [
        'capacity-update',
        "the capacity record's compare-and-set (a lastUpdateTime precondition)",
        'this.capacity.update(',
        'datastore.entities.update',
      ],
      [
        'ledger-query',
        'Query.get (runQuery: listing by state, by rule, by id prefix)',
        ".where('state', '==',",
        'datastore.entities.list',
      ],
    ] as const
  ).map(([id, what, text, permission]): Call => ({
    id,
    what,
    code: { file: LEDGER_CODE, text },
    caller: 'dispatcher',
    permission,
    resource: LEDGER,
    doc: DOC.firestore,
    grant: 'google_project_iam_member.dispatcher_firestore',
  })),
  // --- dispatcher: dead letters (dead-letters.ts) -----------------------------------------------
  ...(
    [
      ['dead-letters-pull', 'SubscriberClient.pull', 'subscriber.pull('],
      [
        'dead-letters-give-back',
        'SubscriberClient.modifyAckDeadline (0: give back)',
        'subscriber.modifyAckDeadline(',
      ],
      ['dead-letters-ack', 'SubscriberClient.acknowledge (a replayed one)', 'subscriber.acknowledge('],
    ] as const
  ).map(([id, what, text]): Call => ({
    id,
    what,
    code: { file: DEAD_LETTERS, text },
    caller: 'dispatcher',
    permission: 'pubsub.subscriptions.consume',
    resource: subscription('dead_letter'),
    doc: DOC.pubsub,
    grant: 'google_pubsub_subscription_iam_member.dispatcher_reads_dead_letters',
  })),
  ...(['uploads', 'completions'] as const).map((name): Call => ({
    id: `replay-to-${name}`,
    what: `PublisherClient.publish (a replay to ${name})`,
    code: { file: DEAD_LETTERS, text: 'publisher.publish(' },
    caller: 'dispatcher',
    permission: 'pubsub.topics.publish',
    resource: topic(name),
    doc: DOC.pubsub,
    grant: `google_pubsub_topic_iam_member.dispatcher_replays_${name}`,
  })),
  // --- dispatcher: job events (job-events-publisher.ts) ------------------------------------------
  {
    id: 'publish-job-events',
    what: 'Topic.publishMessage (the outbox drained to the job-events topic)',
    code: { file: 'services/dispatcher/src/gcp/job-events-publisher.ts', text: 'topic.publishMessage(' },
    caller: 'dispatcher',
    permission: 'pubsub.topics.publish',
    resource: topic('job_events'),
    doc: DOC.pubsub,
    grant: 'google_pubsub_topic_iam_member.dispatcher_publishes_job_events',
  },
  // --- worker (the Cloud Run job and every task VM) ---------------------------------------------
  {
    id: 'worker-read-input',
    what: 'File.getMetadata, then createReadStream of the pinned generation',
    code: { file: 'jobs/worker/src/io/input.ts', text: 'file.createReadStream()' },
    caller: 'worker',
    permission: 'storage.objects.get',
    resource: bucket('input'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.worker_reads_input',
  },
  {
    id: 'worker-write-output',
    what: 'File.createWriteStream (results, _SUCCESS) and File.save (the log)',
    code: { file: 'jobs/worker/src/io/output.ts', text: 'file.createWriteStream(' },
    caller: 'worker',
    permission: 'storage.objects.create',
    resource: bucket('output'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.worker_writes_output',
  },
  {
    id: 'worker-replace-output',
    what: 'File.save of the log every 30 s (replaces it), File.delete (remove)',
    code: { file: 'jobs/worker/src/io/gcs.ts', text: '.save(content' },
    caller: 'worker',
    permission: 'storage.objects.delete',
    resource: bucket('output'),
    doc: DOC.storageOverwrite,
    grant: 'google_storage_bucket_iam_member.worker_writes_output',
  },
  {
    id: 'agent-write-log',
    what: "File.save of the task's log (the VM agent, as the VM's account)",
    code: { file: AGENT_STORAGE, text: '.save(content' },
    caller: 'worker',
    permission: 'storage.objects.create',
    resource: bucket('output'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.worker_writes_output',
  },
  {
    id: 'agent-replace-log',
    what: "File.save of the task's log every 30 s, which replaces it (the VM agent)",
    code: { file: AGENT_STORAGE, text: '.save(content' },
    caller: 'worker',
    permission: 'storage.objects.delete',
    resource: bucket('output'),
    doc: DOC.storageOverwrite,
    grant: 'google_storage_bucket_iam_member.worker_writes_output',
  },
  {
    id: 'worker-list-shared',
    what: 'Bucket.getFiles (SHARED_URI)',
    code: { file: AGENT_PORTS, text: '.getFiles({ prefix: location.name })' },
    caller: 'worker',
    permission: 'storage.objects.list',
    resource: bucket('shared'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.worker_reads_shared',
  },
  {
    id: 'worker-get-shared',
    what: 'File.download (SHARED_URI into /tmp/worker)',
    code: { file: AGENT_PORTS, text: 'file.download({ destination: target })' },
    caller: 'worker',
    permission: 'storage.objects.get',
    resource: bucket('shared'),
    doc: DOC.storage,
    grant: 'google_storage_bucket_iam_member.worker_reads_shared',
  },
  {
    id: 'worker-publish-completion',
    what: 'Topic.publishMessage (the completion of an attempt on Cloud Run: the job)',
    code: { file: 'jobs/worker/src/completion.ts', text: 'publishMessage(' },
    caller: 'worker',
    permission: 'pubsub.topics.publish',
    resource: topic('completions'),
    doc: DOC.pubsub,
    grant: 'google_pubsub_topic_iam_member.worker_publishes_completions',
  },
  {
    id: 'agent-publish-completion',
    what: 'Topic.publishMessage (the completion of an attempt on a VM: the VM agent)',
    code: { file: AGENT_PORTS, text: 'publishMessage({ json: message, attributes })' },
    caller: 'worker',
    permission: 'pubsub.topics.publish',
    resource: topic('completions'),
    doc: DOC.pubsub,
    grant: 'google_pubsub_topic_iam_member.worker_publishes_completions',
  },
  {
    id: 'vm-self-delete',
    what: 'InstancesClient.delete of its own VM (the agent)',
    code: { file: AGENT_PORTS, text: 'client.delete({ project, zone, instance })' },
    caller: 'worker',
    permission: 'compute.instances.delete',
    resource: VM,
    doc: `${DOC.computeRest}/instances/delete`,
    grant: 'google_project_iam_member.worker_deletes_own_vm',
  },
  {
    id: 'vm-self-delete-boot-disk',
    what: 'InstancesClient.delete of its own VM (the agent): its boot disk, autoDelete, goes with it',
    code: { file: AGENT_PORTS, text: 'client.delete({ project, zone, instance })' },
    caller: 'worker',
    permission: 'compute.disks.delete',
    resource: VM_DISK,
    doc: `${DOC.computeRest}/instances/delete`,
    grant: 'google_project_iam_member.worker_deletes_own_vm',
  },
  {
    id: 'vm-self-delete-curl',
    what: "DELETE .../instances/NAME with curl (the start-up script's EXIT trap)",
    code: { file: STARTUP, text: '--request DELETE' },
    caller: 'worker',
    permission: 'compute.instances.delete',
    resource: VM,
    doc: `${DOC.computeRest}/instances/delete`,
    grant: 'google_project_iam_member.worker_deletes_own_vm',
  },
  {
    id: 'vm-logging-agent',
    what: "the VM's logging agent (metadata google-logging-enabled) writes the start-up script's log",
    code: { file: COMPUTE_LAUNCHER, text: "'google-logging-enabled': 'true'" },
    caller: 'worker',
    permission: 'logging.logEntries.create',
    resource: PROJECT,
    doc: DOC.logging,
    grant: 'google_project_iam_member.worker_logs',
  },
  {
    id: 'vm-pull-images',
    what: 'docker pull of the agent image (docker-credential-gcr) and of task images kept in the repository',
    code: { file: STARTUP, text: 'docker-credential-gcr configure-docker' },
    caller: 'worker',
    permission: 'artifactregistry.repositories.downloadArtifacts',
    resource: REPOSITORY,
    doc: DOC.registry,
    grant: 'google_artifact_registry_repository_iam_member.worker_pulls_images',
  },
  // --- the push identity --------------------------------------------------------------------------
  {
    id: 'invoke-dispatcher',
    what: 'Pub/Sub push and Cloud Scheduler requests to the dispatcher, with its OIDC token',
    code: { file: 'terraform/pubsub.tf', text: 'service_account_email = google_service_account.push.email' },
    caller: 'push',
    permission: 'run.routes.invoke',
    resource: {
      terraform: 'google_cloud_run_v2_service.dispatcher',
      type: 'run.googleapis.com/Service',
      name: 'projects/${var.project_id}/locations/${var.region}/services/${local.service_name}',
    },
    doc: DOC.invoke,
    grant: 'google_cloud_run_v2_service_iam_member.push_invokes_dispatcher',
  },
  // --- Google's service agents ----------------------------------------------------------------------
  {
    id: 'gcs-notify-uploads',
    what: "the input bucket's OBJECT_FINALIZE notifications",
    code: { file: 'terraform/storage.tf', text: 'event_types    = ["OBJECT_FINALIZE"]' },
    caller: 'gcs-agent',
    permission: 'pubsub.topics.publish',
    resource: topic('uploads'),
    doc: DOC.gcsNotify,
    grant: 'google_pubsub_topic_iam_member.gcs_publishes_uploads',
  },
  {
    id: 'pubsub-forward-dead-letters',
    what: 'forwarding an undeliverable push to the dead-letter topic',
    code: { file: 'terraform/pubsub.tf', text: 'dead_letter_topic     = google_pubsub_topic.dead_letter.id' },
    caller: 'pubsub-agent',
    permission: 'pubsub.topics.publish',
    resource: topic('dead_letter'),
    doc: DOC.deadLetter,
    grant: 'google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters',
  },
  ...(['uploads', 'completions'] as const).map((name): Call => ({
    id: `pubsub-ack-dead-lettered-${name}`,
    what: `acknowledging a dead-lettered message on the ${name} push subscription`,
    code: { file: 'terraform/pubsub.tf', text: `resource "google_pubsub_subscription" "${name}"` },
    caller: 'pubsub-agent',
    permission: 'pubsub.subscriptions.consume',
    resource: subscription(name),
    doc: DOC.deadLetter,
    grant: `google_pubsub_subscription_iam_member.pubsub_agent_acks_${name}`,
  })),
  {
    id: 'pubsub-mint-push-tokens',
    what: 'signing the OIDC token of each push as the push account',
    code: { file: 'terraform/pubsub.tf', text: 'oidc_token {' },
    caller: 'pubsub-agent',
    permission: 'iam.serviceAccounts.getOpenIdToken',
    resource: serviceAccount('push'),
    doc: DOC.push,
    grant: 'google_service_account_iam_member.pubsub_agent_mints_push_tokens',
  },
  {
    id: 'scheduler-mint-tokens',
    what: "signing Cloud Scheduler's OIDC tokens (/reap, /reconcile, scheduled jobs) as the push account",
    code: { file: 'terraform/scheduler.tf', text: 'oidc_token {' },
    caller: 'scheduler-agent',
    permission: 'iam.serviceAccounts.getOpenIdToken',
    resource: serviceAccount('push'),
    doc: DOC.scheduler,
    outsideTerraform:
      'The Cloud Scheduler service agent holds roles/cloudscheduler.serviceAgent, which Google grants when the API is enabled.',
  },
  {
    id: 'run-agent-pulls-images',
    what: "pulling the dispatcher's and the worker job's images when Cloud Run deploys them",
    code: { file: 'terraform/run.tf', text: 'image = var.worker_image' },
    caller: 'run-agent',
    permission: 'artifactregistry.repositories.downloadArtifacts',
    resource: REPOSITORY,
    doc: DOC.runAgent,
    outsideTerraform:
      'The Cloud Run service agent reads repositories of its own project without a grant; one in another project would need Artifact Registry Reader for it.',
  },
  // --- the image build (cloudbuild.yaml, run as the build account) ------------------------------
  {
    id: 'build-fetch-source',
    what: 'Cloud Build fetching the source archive gcloud builds submit staged',
    code: { file: 'scripts/lib/common.sh', text: '--gcs-source-staging-dir=gs://' },
    caller: 'build',
    permission: 'storage.objects.get',
    resource: bucket('build_source'),
    doc: DOC.build,
    grant: 'google_storage_bucket_iam_member.build_reads_source',
  },
  ...(
    [
      [
        'build-push-images',
        'artifactregistry.repositories.uploadArtifacts',
        'pushing the images (`images:`)',
      ],
      [
        'build-push-layers',
        'artifactregistry.repositories.downloadArtifacts',
        'the push reading layers already there',
      ],
    ] as const
  ).map(([id, permission, what]): Call => ({
    id,
    what,
    code: { file: 'cloudbuild.yaml', text: 'images:' },
    caller: 'build',
    permission,
    resource: REPOSITORY,
    doc: DOC.registry,
    grant: 'google_artifact_registry_repository_iam_member.build_pushes_images',
  })),
  {
    id: 'build-logs',
    what: 'build logs (options.logging: CLOUD_LOGGING_ONLY)',
    code: { file: 'cloudbuild.yaml', text: 'logging: CLOUD_LOGGING_ONLY' },
    caller: 'build',
    permission: 'logging.logEntries.create',
    resource: PROJECT,
    doc: DOC.build,
    grant: 'google_project_iam_member.build_logs',
  },
  // --- the person running setup.sh and deploy.sh ---------------------------------------------------
  ...(
    [
      ['deployer-submit-build', 'cloudbuild.builds.create', PROJECT, DOC.buildRoles, 'gcloud builds submit'],
      [
        'deployer-stage-source',
        'storage.objects.create',
        bucket('build_source'),
        DOC.storage,
        '--gcs-source-staging-dir',
      ],
      [
        'deployer-act-as-build',
        'iam.serviceAccounts.actAs',
        serviceAccount('build'),
        DOC.build,
        '--service-account=',
      ],
    ] as const
  ).map(([id, permission, resource, doc, text]): Call => ({
    id,
    what: `gcloud builds submit (${permission})`,
    code: { file: 'scripts/lib/common.sh', text },
    caller: 'deployer',
    permission,
    resource,
    doc,
    outsideTerraform:
      'The deployer is a project Owner, or holds Cloud Build Editor, Storage Object User on the staging bucket and Service Account User on the build account (README, "Deploy from zero").',
  })),
  ...(
    [
      [
        'deployer-enable-apis',
        'setup.sh',
        'gcloud services enable',
        'serviceusage.services.enable',
        PROJECT,
        DOC.serviceUsage,
      ],
      [
        'deployer-upload',
        'scripts/upload.sh',
        'gcloud storage cp',
        'storage.objects.create',
        bucket('input'),
        DOC.storage,
      ],
      [
        'deployer-wait-results',
        'scripts/results.sh',
        'gcloud storage ls',
        'storage.objects.list',
        bucket('output'),
        DOC.storage,
      ],
      [
        'deployer-get-results',
        'scripts/results.sh',
        'gcloud storage cp --recursive',
        'storage.objects.get',
        bucket('output'),
        DOC.storage,
      ],
      [
        'deployer-traffic',
        'deploy.sh',
        'gcloud run services update-traffic',
        'run.services.update',
        {
          terraform: 'google_cloud_run_v2_service.dispatcher',
          type: 'run.googleapis.com/Service',
          name: 'projects/${var.project_id}/locations/${var.region}/services/${local.service_name}',
        },
        DOC.runPermissions,
      ],
      [
        'deployer-list-leftover-vms',
        'destroy.sh',
        'gcloud compute instances list',
        'compute.instances.list',
        PROJECT,
        `${DOC.computeRest}/instances/list`,
      ],
      [
        'deployer-delete-leftover-vms',
        'destroy.sh',
        'gcloud compute instances delete',
        'compute.instances.delete',
        VM,
        `${DOC.computeRest}/instances/delete`,
      ],
      [
        'deployer-empty-buckets',
        'destroy.sh',
        'gcloud storage rm --recursive --all-versions',
        'storage.objects.delete',
        bucket('output'),
        DOC.storage,
      ],
      [
        'deployer-bake-builder',
        'scripts/bake-vm-image.sh',
        'gcloud compute instances create',
        'compute.instances.create',
        PROJECT,
        DOC.createVm,
      ],
      [
        'deployer-bake-image',
        'scripts/bake-vm-image.sh',
        'gcloud compute images create',
        'compute.images.create',
        PROJECT,
        `${DOC.computeRest}/images/insert`,
      ],
    ] as const
  ).map(([id, file, text, permission, resource, doc]): Call => ({
    id,
    what: `${text} (${file})`,
    code: { file, text },
    caller: 'deployer',
    permission,
    resource,
    doc,
    outsideTerraform:
      'The person running the scripts: a project Owner, or the roles the README lists under "Deploy from zero".',
  })),
  {
    id: 'deployer-act-as-push',
    what: 'terraform creating the push subscriptions and Cloud Scheduler jobs that sign as the push account',
    code: { file: 'terraform/pubsub.tf', text: 'oidc_token {' },
    caller: 'deployer',
    permission: 'iam.serviceAccounts.actAs',
    resource: serviceAccount('push'),
    doc: DOC.push,
    outsideTerraform:
      'The deployer runs terraform; a project Owner holds actAs on every account of the project.',
  },
];

export interface RoleEntry {
  /** The role's permissions that matter to the calls above: not all of them. */
  permissions: string[];
  doc: string;
}

/**
 * The permissions of each predefined role terraform grants, as far as the calls above are concerned;
 * the table is partial (most roles hold more, such as resourcemanager.projects.get), taken from the
 * pages named. Read for this change from https://cloud.google.com/iam/docs/roles-permissions/<service>.
 */
export const PREDEFINED_ROLES: Record<string, RoleEntry> = {
  'roles/datastore.user': {
    permissions: [
      'datastore.databases.get',
      'datastore.entities.create',
      'datastore.entities.delete',
      'datastore.entities.get',
      'datastore.entities.list',
      'datastore.entities.update',
    ],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/datastore',
  },
  'roles/storage.objectViewer': {
    permissions: ['storage.objects.get', 'storage.objects.list'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/storage',
  },
  'roles/storage.objectUser': {
    permissions: [
      'storage.multipartUploads.create',
      'storage.objects.create',
      'storage.objects.delete',
      'storage.objects.get',
      'storage.objects.list',
      'storage.objects.update',
    ],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/storage',
  },
  'roles/storage.objectCreator': {
    permissions: ['storage.objects.create'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/storage',
  },
  'roles/pubsub.publisher': {
    permissions: ['pubsub.topics.publish'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/pubsub',
  },
  'roles/pubsub.subscriber': {
    permissions: [
      'pubsub.snapshots.seek',
      'pubsub.subscriptions.consume',
      'pubsub.topics.attachSubscription',
    ],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/pubsub',
  },
  // Exactly these three: no run.executions.get, run.tasks.list or run.operations.get.
  'roles/run.jobsExecutorWithOverrides': {
    permissions: ['run.executions.cancel', 'run.jobs.run', 'run.jobs.runWithOverrides'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/run',
  },
  'roles/run.viewer': {
    permissions: [
      'run.executions.get',
      'run.executions.list',
      'run.jobs.get',
      'run.operations.get',
      'run.tasks.get',
      'run.tasks.list',
    ],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/run',
  },
  'roles/run.invoker': {
    permissions: ['run.routes.invoke'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/run',
  },
  'roles/iam.serviceAccountUser': {
    permissions: ['iam.serviceAccounts.actAs', 'iam.serviceAccounts.get', 'iam.serviceAccounts.list'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/iam',
  },
  'roles/iam.serviceAccountTokenCreator': {
    permissions: [
      'iam.serviceAccounts.getAccessToken',
      'iam.serviceAccounts.getOpenIdToken',
      'iam.serviceAccounts.signBlob',
      'iam.serviceAccounts.signJwt',
    ],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/iam',
  },
  'roles/logging.logWriter': {
    permissions: ['logging.logEntries.create'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/logging',
  },
  'roles/artifactregistry.reader': {
    permissions: ['artifactregistry.repositories.downloadArtifacts'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/artifactregistry',
  },
  'roles/artifactregistry.writer': {
    permissions: [
      'artifactregistry.repositories.downloadArtifacts',
      'artifactregistry.repositories.uploadArtifacts',
    ],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/artifactregistry',
  },
  'roles/compute.imageUser': {
    permissions: ['compute.images.get', 'compute.images.getFromFamily', 'compute.images.useReadOnly'],
    doc: 'https://cloud.google.com/iam/docs/roles-permissions/compute',
  },
};

/**
 * Grants on the project without a condition, each with the reason a resource-level grant or a
 * condition cannot do. The test fails on any other.
 */
export const PROJECT_WIDE_ALLOWED: Record<string, string> = {
  'google_project_iam_member.dispatcher_project_reads':
    'compute.instances.list is checked on the project (a name condition would deny it); zone and Cloud Run operations, and the region read for its quotas, have no IAM of their own and are not among the resource types IAM conditions list. Read-only.',
  'google_project_iam_member.worker_logs':
    'logging.logEntries.create is checked on the project the entries are written to; there is no narrower resource.',
  'google_project_iam_member.build_logs':
    'logging.logEntries.create is checked on the project the entries are written to; there is no narrower resource.',
  'google_project_iam_member.dispatcher_uses_own_images':
    'Only with a boot image baked into this project: the images are made outside terraform, under a new name at each bake. Read-only use of images.',
};
