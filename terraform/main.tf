# The storage-triggered pipeline: names, the project's APIs, and the checks across variables.
# One file per topic beside this one: storage.tf, pubsub.tf, iam.tf (accounts and grants), roles.tf
# (custom roles), network.tf (the task VMs' VPC), build.tf (the image build's account and bucket),
# run.tf, scheduler.tf, firestore.tf, registry.tf.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  input_bucket  = coalesce(var.input_bucket, "${var.project_id}-${var.name_prefix}-input")
  output_bucket = coalesce(var.output_bucket, "${var.project_id}-${var.name_prefix}-output")
  shared_bucket = coalesce(var.shared_bucket, "${var.project_id}-${var.name_prefix}-shared")

  service_name = "${var.name_prefix}-dispatcher"
  job_name     = "${var.name_prefix}-worker"

  create_service = var.dispatcher_image != ""
  create_job     = var.worker_image != ""

  # The audience of every OIDC token sent to the dispatcher (Pub/Sub push, Cloud Scheduler) and the
  # PUSH_AUDIENCE the dispatcher checks. A service cannot read its own URL when it is created (the
  # resource's `uri` exists only after it), so this is the deterministic URL Cloud Run gives every
  # service, https://SERVICE-PROJECT_NUMBER.REGION.run.app: known before creation, the same string
  # on both sides, and accepted by Cloud Run's own IAM check as the service's URL.
  service_url = "https://${local.service_name}-${local.project_number}.${var.region}.run.app"

  # The ledger's collection (LEDGER_COLLECTION) and its index (services/dispatcher/src/gcp/firestore-ledger.ts).
  ledger_collection = "jobs"

  # Firestore: the region itself unless a multi-region (nam5, eur3) is asked for; a regional database
  # sits next to the dispatcher, a multi-region one survives a regional outage. Cannot change later.
  firestore_location = coalesce(var.firestore_location, var.region)

  # The task VMs' names, fixed by the dispatcher (compute-launcher.ts: instanceName).
  vm_name_prefix = "pipeline-"

  pubsub_service_agent  = "service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  jobs_caller_members   = [for email in var.jobs_callers : endswith(email, ".gserviceaccount.com") ? "serviceAccount:${email}" : "user:${email}"]
  dispatcher_sa_member  = "serviceAccount:${google_service_account.dispatcher.email}"
  worker_sa_member      = "serviceAccount:${google_service_account.worker.email}"
  push_sa_member        = "serviceAccount:${google_service_account.push.email}"
  build_sa_member       = "serviceAccount:${google_service_account.build.email}"
  pubsub_service_member = "serviceAccount:${local.pubsub_service_agent}"

  # setup.sh enables cloudresourcemanager and serviceusage before the first plan (data.google_project
  # and google_project_service need them); they are listed here too so that terraform knows them.
  apis = toset([
    "cloudresourcemanager.googleapis.com",
    "serviceusage.googleapis.com",
    "run.googleapis.com",
    "compute.googleapis.com",
    "pubsub.googleapis.com",
    "storage.googleapis.com",
    "firestore.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
  ])
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project = var.project_id
  service = each.value
  # Other things in the project may use these APIs: destroying the pipeline leaves them on.
  disable_on_destroy = false
}

# Checks across variables (a variable's validation can only see itself before Terraform 1.9).
resource "terraform_data" "checks" {
  input = {
    region = var.region
    zone   = var.zone
  }

  lifecycle {
    precondition {
      condition     = startswith(var.zone, "${var.region}-")
      error_message = "zone ${var.zone} is not in region ${var.region}."
    }
    precondition {
      condition     = var.dispatcher_image == "" || var.worker_image != ""
      error_message = "worker_image must be set with dispatcher_image: the dispatcher needs WORKER_IMAGE and the worker job."
    }
    precondition {
      condition     = var.dispatcher_image == "" || var.agent_image != ""
      error_message = "agent_image must be set with dispatcher_image: the dispatcher needs AGENT_IMAGE for its task VMs."
    }
  }
}
