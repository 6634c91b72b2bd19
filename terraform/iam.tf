# Service accounts and their grants. Each account holds only what its part calls, granted on the
# resource it is called on wherever the role allows it, or on the project under an IAM condition on
# the resource's name. The calls, the permission each needs, and the documentation each comes from are
# the permission table, test/infra/permissions.ts; test/infra/permissions.test.ts checks these grants
# against it. Project-level grants without a condition are the exceptions that test allows, each
# with its reason beside it. Nobody here gets roles/owner or roles/editor, and nothing is granted to
# allUsers or allAuthenticatedUsers. Custom roles: roles.tf; the build account: build.tf.

locals {
  # The zones the launcher tries a VM in, in order (VM_ZONES): zone, then vm_fallback_zones.
  vm_zones = concat([var.zone], var.vm_fallback_zones)
  # The pipeline's VMs and their boot disks in those zones, as IAM conditions see their names:
  # compute-launcher.ts names every VM pipeline-<job id>-a<attempt>, and its boot disk takes the
  # instance's name. Each clause names the resource type with its prefix, so no other resource passes.
  # https://cloud.google.com/iam/docs/conditions-resource-attributes
  vm_names_condition = join(" || ", [for zone in local.vm_zones : "(resource.type == \"compute.googleapis.com/Instance\" && resource.name.startsWith(\"projects/${var.project_id}/zones/${zone}/instances/${local.vm_name_prefix}\")) || (resource.type == \"compute.googleapis.com/Disk\" && resource.name.startsWith(\"projects/${var.project_id}/zones/${zone}/disks/${local.vm_name_prefix}\"))"])
}

# The dispatcher refuses VM_ZONES at start with a zone outside REGION, or one zone twice.
check "vm_zones" {
  assert {
    condition     = alltrue([for z in local.vm_zones : startswith(z, "${var.region}-")]) && length(distinct(local.vm_zones)) == length(local.vm_zones)
    error_message = "vm_fallback_zones must be zones of region, other than zone, each once."
  }
}

resource "google_service_account" "dispatcher" {
  account_id   = "${var.name_prefix}-dispatcher"
  display_name = "Pipeline dispatcher (Cloud Run service)"
  description  = "Claims jobs in Firestore and launches Cloud Run job executions and task VMs."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "worker" {
  account_id   = "${var.name_prefix}-worker"
  display_name = "Pipeline worker (Cloud Run job and task VMs)"
  description  = "Runs tasks: reads input and shared files, writes output, reports completions, deletes its own VM."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "push" {
  account_id   = "${var.name_prefix}-push"
  display_name = "Pipeline push identity (Pub/Sub push, Cloud Scheduler)"
  description  = "Signs the OIDC tokens of Pub/Sub pushes and Cloud Scheduler calls to the dispatcher."

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------------------------------------------
# Dispatcher (Cloud Run writes its stdout to Cloud Logging itself: no log grant is needed,
# https://cloud.google.com/run/docs/logging)

# The ledger: documents of the (default) database. Firestore has no IAM on a database of its own, but
# it honours IAM conditions on the database's name, so datastore.user is granted on the project for
# this one database only.
# https://cloud.google.com/firestore/docs/manage-databases#configure_per-database_access_permissions
# https://cloud.google.com/firestore/docs/security/iam
resource "google_project_iam_member" "dispatcher_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.dispatcher_sa_member

  condition {
    title       = "the pipeline ledger only"
    description = "Firestore database ${google_firestore_database.ledger.name}."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.ledger.name}\""
  }
}

# Creating, reading and deleting task VMs and their boot disks: the custom role vm_launcher, on the
# project, under a condition that admits only pipeline-* instances and disks in the VM zones.
# https://cloud.google.com/iam/docs/configuring-resource-based-access
resource "google_project_iam_member" "dispatcher_launches_vms" {
  project = var.project_id
  role    = google_project_iam_custom_role.vm_launcher.id
  member  = local.dispatcher_sa_member

  condition {
    title       = "pipeline task VMs only"
    description = "Instances and disks named ${local.vm_name_prefix}* in ${join(", ", local.vm_zones)}."
    expression  = local.vm_names_condition
  }
}

# Allowed project-wide (read-only): instances.list is checked on the project, where a name condition
# would deny it, and zone and Run operations are not among the resource types the IAM conditions
# page lists (https://cloud.google.com/iam/docs/conditions-resource-attributes). It also reads the
# region's quotas (regions.get, region-quotas.ts) for the queue.
resource "google_project_iam_member" "dispatcher_project_reads" {
  project = var.project_id
  role    = google_project_iam_custom_role.dispatcher_project_reads.id
  member  = local.dispatcher_sa_member
}

# The VM's network interface goes in the task subnet: on that subnet only.
# (compute.subnetworks.use "on the project or on the chosen subnet")
# https://cloud.google.com/compute/docs/access/create-enable-service-accounts-for-instances
resource "google_compute_subnetwork_iam_member" "dispatcher_uses_subnet" {
  project    = var.project_id
  region     = var.region
  subnetwork = google_compute_subnetwork.vms.name
  role       = google_project_iam_custom_role.vm_subnet_user.id
  member     = local.dispatcher_sa_member
}

resource "google_compute_subnetwork_iam_member" "dispatcher_uses_external_ips" {
  count = var.vm_external_ip ? 1 : 0

  project    = var.project_id
  region     = var.region
  subnetwork = google_compute_subnetwork.vms.name
  role       = google_project_iam_custom_role.vm_subnet_external_ip[0].id
  member     = local.dispatcher_sa_member
}

# A boot image baked into this project (scripts/bake-vm-image.sh, vm_image_project = project_id):
# compute.images.useReadOnly on it. Allowed project-wide: the baked images are made outside terraform,
# under a new name at each bake. cos-cloud's images are public and need no grant; for another project's
# images, that project's owner grants roles/compute.imageUser.
# https://cloud.google.com/compute/docs/access/create-enable-service-accounts-for-instances (custom
# image: compute.images.useReadOnly), https://cloud.google.com/iam/docs/roles-permissions/compute
resource "google_project_iam_member" "dispatcher_uses_own_images" {
  count = var.vm_image_project == var.project_id ? 1 : 0

  project = var.project_id
  role    = "roles/compute.imageUser"
  member  = local.dispatcher_sa_member
}

# Attaching the worker account to the VMs it creates (iam.serviceAccounts.actAs), and running the
# worker job, which runs as that account. On the worker account only.
# https://cloud.google.com/compute/docs/access/create-enable-service-accounts-for-instances
resource "google_service_account_iam_member" "dispatcher_acts_as_worker" {
  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.dispatcher_sa_member
}

# POST /jobs and the push intake stat the object (generation, size, content type, metadata) before
# routing: read-only on the input bucket. https://cloud.google.com/storage/docs/access-control/iam-json
# A backfill (POST /backfill) lists the bucket a page at a time (objects.list), which needs
# storage.objects.list: roles/storage.objectViewer grants storage.objects.get and storage.objects.list
# (https://cloud.google.com/storage/docs/access-control/iam-roles; the client libraries' StorageRoles
# list the same two), so this one grant covers both. A backfill of another bucket is refused by
# Cloud Storage (403) and ends FAILED with that reason.
resource "google_storage_bucket_iam_member" "dispatcher_reads_input" {
  bucket = google_storage_bucket.input.name
  role   = "roles/storage.objectViewer"
  member = local.dispatcher_sa_member
}

# GET /jobs/:id/logs and /outputs list and read a job's prefix, and the reconciler reads an attempt's
# _SUCCESS: read-only on the output bucket.
resource "google_storage_bucket_iam_member" "dispatcher_reads_output" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectViewer"
  member = local.dispatcher_sa_member
}

# A success moves the object's _LATEST pointer: a compare-and-set upload that replaces it, which needs
# storage.objects.delete besides create. roles/storage.objectUser, but only on objects whose name
# ends in /_LATEST, so the dispatcher can never rewrite a task's outputs.
# https://cloud.google.com/storage/docs/access-control/iam-permissions,
# https://cloud.google.com/iam/docs/conditions-resource-attributes (resource.name.endsWith)
resource "google_storage_bucket_iam_member" "dispatcher_moves_latest" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectUser"
  member = local.dispatcher_sa_member

  condition {
    title       = "results pointers only"
    description = "Objects named <object>/_LATEST."
    expression  = "resource.name.endsWith(\"/_LATEST\")"
  }
}

# A batch of small files (a rule's "batch") runs as one execution whose tasks each read their own
# entry of a manifest the dispatcher writes first, create-if-absent (ifGenerationMatch=0), under
# _pipeline/batches/: storage.objects.create only (roles/storage.objectCreator: "Grants the following
# permissions: storage.objects.create", https://cloud.google.com/iam/docs/roles-permissions/storage), and only
# there. Without delete it cannot replace an object, so not even a manifest can be rewritten.
resource "google_storage_bucket_iam_member" "dispatcher_writes_batch_manifests" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectCreator"
  member = local.dispatcher_sa_member

  condition {
    title       = "batch manifests only"
    description = "Objects under _pipeline/batches/."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.output.name}/objects/_pipeline/batches/\")"
  }
}

# runJob with containerOverrides (env, args, taskCount, timeout) needs run.jobs.runWithOverrides, and
# cancel run.executions.cancel: roles/run.jobsExecutorWithOverrides holds run.jobs.run,
# run.jobs.runWithOverrides and run.executions.cancel, nothing else. On the worker job only.
# https://cloud.google.com/iam/docs/roles-permissions/run
resource "google_cloud_run_v2_job_iam_member" "dispatcher_runs_worker" {
  count = local.create_job ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.worker[0].name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = local.dispatcher_sa_member
}

# The reconciler's getExecution (run.executions.get) and listTasks (run.tasks.list), which
# jobsExecutorWithOverrides lacks: without them a Cloud Run execution's end is never seen. And the
# launcher's find (listExecutions, run.executions.list): after a lost RunJob answer, whether the
# execution started, so that it is not launched twice.
# roles/run.viewer, granted on the worker job: a job's executions and tasks are its children, and a
# role on the job covers them (https://cloud.google.com/run/docs/managing/job-executions).
resource "google_cloud_run_v2_job_iam_member" "dispatcher_reads_worker_executions" {
  count = local.create_job ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.worker[0].name
  role     = "roles/run.viewer"
  member   = local.dispatcher_sa_member
}

# GET /deadletters pulls the dead-letter subscription and gives the messages back (modifyAckDeadline
# 0); a replay acknowledges the one it published again: pubsub.subscriptions.consume, on that
# subscription only. https://cloud.google.com/pubsub/docs/access-control
resource "google_pubsub_subscription_iam_member" "dispatcher_reads_dead_letters" {
  subscription = google_pubsub_subscription.dead_letter.name
  role         = "roles/pubsub.subscriber"
  member       = local.dispatcher_sa_member
}

# A replay publishes a dead letter again to the topic its subscription reads: publisher on the
# uploads and completions topics only (not the dead-letter topic, which only Pub/Sub writes to).
resource "google_pubsub_topic_iam_member" "dispatcher_replays_uploads" {
  topic  = google_pubsub_topic.uploads.id
  role   = "roles/pubsub.publisher"
  member = local.dispatcher_sa_member
}

resource "google_pubsub_topic_iam_member" "dispatcher_replays_completions" {
  topic  = google_pubsub_topic.completions.id
  role   = "roles/pubsub.publisher"
  member = local.dispatcher_sa_member
}

# Job state changes, drained from the ledger's outbox to the job-events topic: publisher on that
# topic only (pubsub.topics.publish). https://cloud.google.com/pubsub/docs/access-control
resource "google_pubsub_topic_iam_member" "dispatcher_publishes_job_events" {
  topic  = google_pubsub_topic.job_events.id
  role   = "roles/pubsub.publisher"
  member = local.dispatcher_sa_member
}

# ---------------------------------------------------------------------------------------------------
# Worker (the Cloud Run job and every task VM)

# Reads the object it works on (metadata, then the pinned generation).
resource "google_storage_bucket_iam_member" "worker_reads_input" {
  bucket = google_storage_bucket.input.name
  role   = "roles/storage.objectViewer"
  member = local.worker_sa_member
}

# Writes results, logs and _SUCCESS. The log is uploaded again every 30 s, and replacing an object
# needs storage.objects.delete as well as create, so roles/storage.objectUser (objects and multipart
# uploads, without objectAdmin's IAM-policy permissions).
# https://cloud.google.com/storage/docs/access-control/iam-permissions
resource "google_storage_bucket_iam_member" "worker_writes_output" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectUser"
  member = local.worker_sa_member
}

# Lists and downloads SHARED_URI into /tmp/worker on the VM.
resource "google_storage_bucket_iam_member" "worker_reads_shared" {
  bucket = google_storage_bucket.shared.name
  role   = "roles/storage.objectViewer"
  member = local.worker_sa_member
}

# Publishes the one completion event of each attempt.
resource "google_pubsub_topic_iam_member" "worker_publishes_completions" {
  topic  = google_pubsub_topic.completions.id
  role   = "roles/pubsub.publisher"
  member = local.worker_sa_member
}

# Allowed project-wide: the VM's logging agent (google-logging-enabled) writes the start-up script's
# and agent's logs with the VM's account, and log entries are written to the project; there is no
# narrower resource to grant logging.logEntries.create on. https://cloud.google.com/logging/docs/access-control
resource "google_project_iam_member" "worker_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.worker_sa_member
}

# The VM pulls the agent image (docker-credential-gcr with the VM's token) and task images kept
# here (the agent, with the metadata server's token). https://cloud.google.com/artifact-registry/docs/access-control
resource "google_artifact_registry_repository_iam_member" "worker_pulls_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = local.worker_sa_member
}

# Deleting its own VM: the custom role vm_self_delete on the project, narrowed by a condition to the
# pipeline's VMs in the VM zones. If the condition ever failed to match, maxRunDuration and the reaper
# still delete the VM.
resource "google_project_iam_member" "worker_deletes_own_vm" {
  project = var.project_id
  role    = google_project_iam_custom_role.vm_self_delete.id
  member  = local.worker_sa_member

  condition {
    title       = "pipeline task VMs only"
    description = "Instances and their boot disks named ${local.vm_name_prefix}* in ${join(", ", local.vm_zones)}."
    expression  = local.vm_names_condition
  }
}

# ---------------------------------------------------------------------------------------------------
# Push identity (Pub/Sub push subscriptions and Cloud Scheduler)

# Passes Cloud Run's IAM check on the dispatcher (run.routes.invoke); the dispatcher then checks the
# token's email itself. https://cloud.google.com/run/docs/authenticating/service-to-service
resource "google_cloud_run_v2_service_iam_member" "push_invokes_dispatcher" {
  count = local.create_service ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.dispatcher[0].name
  role     = "roles/run.invoker"
  member   = local.push_sa_member
}

# The people and CI accounts of jobs_callers reach /jobs through Cloud Run's IAM check first.
resource "google_cloud_run_v2_service_iam_member" "jobs_callers_invoke_dispatcher" {
  for_each = local.create_service ? toset(local.jobs_caller_members) : toset([])

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.dispatcher[0].name
  role     = "roles/run.invoker"
  member   = each.value
}

# ---------------------------------------------------------------------------------------------------
# Google's service agents

# The Cloud Storage service agent publishes the input bucket's notifications to "uploads".
# https://cloud.google.com/storage/docs/reporting-changes
resource "google_pubsub_topic_iam_member" "gcs_publishes_uploads" {
  topic  = google_pubsub_topic.uploads.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# Dead-lettering: the Pub/Sub service agent forwards undeliverable messages to the dead-letter topic
# (publisher there) and acknowledges them on the source subscription (subscriber there). setup.sh
# makes sure the agent exists before this apply (gcloud beta services identity create).
# https://cloud.google.com/pubsub/docs/dead-letter-topics
resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_member

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_uploads" {
  count = local.create_service ? 1 : 0

  subscription = google_pubsub_subscription.uploads[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_member
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_completions" {
  count = local.create_service ? 1 : 0

  subscription = google_pubsub_subscription.completions[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_member
}

# Pub/Sub mints the push OIDC tokens as the push account (iam.serviceAccounts.getOpenIdToken).
# Projects that enabled Pub/Sub before April 2021 need this grant for authenticated push (newer ones
# have it through the service agent role); granted on the push account only.
# https://cloud.google.com/pubsub/docs/create-push-subscription
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_member

  depends_on = [google_project_service.apis]
}
