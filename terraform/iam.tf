# Service accounts and their grants. Each account holds only what its part does, granted on the
# resource it is used on wherever the role allows it; project-level grants are the exceptions
# (Firestore, Compute instances the dispatcher creates, log writing) and say why. Nobody here gets
# roles/owner or roles/editor, and nothing is granted to allUsers or allAuthenticatedUsers.

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
# Dispatcher

# Firestore has no per-database or per-collection IAM for data access: the ledger needs read and
# write on documents, which is roles/datastore.user at the project level.
resource "google_project_iam_member" "dispatcher_firestore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = local.dispatcher_sa_member
}

# Inserting VMs (and waiting on the zone operation), and the reaper's list and delete of instances
# labelled pipeline=true. Instance creation is checked at the project/zone level, so this cannot be
# granted on an instance. It could be narrowed with an IAM condition such as
#   resource.name.startsWith("projects/PROJECT/zones/ZONE/instances/pipeline-")
# but list permissions are checked on the project, which such a condition would deny, so it is left
# whole; the VMs' names are fixed by the dispatcher (pipeline-<job id>-a<attempt>).
resource "google_project_iam_member" "dispatcher_compute" {
  project = var.project_id
  role    = "roles/compute.instanceAdmin.v1"
  member  = local.dispatcher_sa_member
}

# Structured logs to Cloud Logging (Cloud Run captures stdout, this covers the API writers too).
resource "google_project_iam_member" "dispatcher_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.dispatcher_sa_member
}

# Attaching the worker account to the VMs it creates (iam.serviceAccounts.actAs), and running the
# worker job, which runs as that account. On the worker account only, not project-wide.
resource "google_service_account_iam_member" "dispatcher_acts_as_worker" {
  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.dispatcher_sa_member
}

# POST /jobs and the push intake stat the object (generation, size, content type, metadata) before
# routing: read-only on the input bucket.
resource "google_storage_bucket_iam_member" "dispatcher_reads_input" {
  bucket = google_storage_bucket.input.name
  role   = "roles/storage.objectViewer"
  member = local.dispatcher_sa_member
}

# runJob with containerOverrides (env, args, taskCount, timeout) needs run.jobs.runWithOverrides.
# roles/run.jobsExecutorWithOverrides holds it (with run, cancel and reading executions) without
# run.developer's power to change or delete the job. Granted on the worker job only.
resource "google_cloud_run_v2_job_iam_member" "dispatcher_runs_worker" {
  count = local.create_job ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.worker[0].name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = local.dispatcher_sa_member
}

# GET /deadletters pulls the dead-letter subscription and gives the messages back (modifyAckDeadline
# 0); a replay acknowledges the one it published again. pubsub.subscriber on that subscription only.
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

# ---------------------------------------------------------------------------------------------------
# Worker (the Cloud Run job and every task VM)

# Reads the object it works on.
resource "google_storage_bucket_iam_member" "worker_reads_input" {
  bucket = google_storage_bucket.input.name
  role   = "roles/storage.objectViewer"
  member = local.worker_sa_member
}

# Writes results, logs and _SUCCESS (objectAdmin: the log is uploaded again every 30 s, which
# overwrites, so it needs delete as well as create).
resource "google_storage_bucket_iam_member" "worker_writes_output" {
  bucket = google_storage_bucket.output.name
  role   = "roles/storage.objectAdmin"
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

# The VM's logging agent (google-logging-enabled) writes the start-up script's and agent's logs.
resource "google_project_iam_member" "worker_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.worker_sa_member
}

# The VM pulls the worker image (and task images kept here) with its own token.
resource "google_artifact_registry_repository_iam_member" "worker_pulls_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = local.worker_sa_member
}

# A VM deletes itself (the agent through the Compute API, the start-up script's EXIT trap with curl).
# compute.instanceAdmin.v1 would also let it create VMs and touch every disk: a custom role holds
# just get and delete of instances. The delete call is not waited on, so no
# compute.zoneOperations.get; the boot disk goes with the instance (autoDelete).
resource "google_project_iam_custom_role" "vm_self_delete" {
  role_id     = replace("${var.name_prefix}_vm_self_delete", "-", "_")
  title       = "Pipeline VM self-delete"
  description = "Get and delete a Compute Engine instance: what a pipeline task VM needs to delete itself."
  permissions = ["compute.instances.get", "compute.instances.delete"]
}

# Custom roles cannot be granted on one instance before it exists, so the grant is on the project,
# narrowed by an IAM condition to the pipeline's VMs in its zone (names from compute-launcher.ts).
# If the condition ever failed to match, maxRunDuration and the reaper still delete the VM.
resource "google_project_iam_member" "worker_deletes_own_vm" {
  project = var.project_id
  role    = google_project_iam_custom_role.vm_self_delete.id
  member  = local.worker_sa_member

  condition {
    title       = "pipeline task VMs only"
    description = "Instances named ${local.vm_name_prefix}* in ${var.zone}."
    expression  = "resource.name.startsWith(\"projects/${var.project_id}/zones/${var.zone}/instances/${local.vm_name_prefix}\")"
  }
}

# ---------------------------------------------------------------------------------------------------
# Push identity (Pub/Sub push subscriptions and Cloud Scheduler)

# Passes Cloud Run's IAM check on the dispatcher; the dispatcher then checks the token's email itself.
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
resource "google_pubsub_topic_iam_member" "gcs_publishes_uploads" {
  topic  = google_pubsub_topic.uploads.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# Dead-lettering: the Pub/Sub service agent forwards undeliverable messages to the dead-letter topic
# (publisher there) and acknowledges them on the source subscription (subscriber there).
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

# Pub/Sub mints the push OIDC tokens as the push account. Projects that enabled Pub/Sub before
# April 2021 need this grant for authenticated push (newer ones have it through the service agent
# role); granted on the push account only, it is harmless on the others.
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_member

  depends_on = [google_project_service.apis]
}
