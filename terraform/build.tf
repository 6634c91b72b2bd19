# The image build. setup.sh and deploy.sh run cloudbuild.yaml with
#   gcloud builds submit --service-account=<build_service_account> --gcs-source-staging-dir=gs://<build_source_bucket>/source
# so the build runs as an account of its own, holding only what the build needs, rather than as Cloud
# Build's default account (on newer projects the Compute Engine default account, often an Editor).
# A user-specified build account must send its logs to Cloud Logging or a bucket of one's own:
# cloudbuild.yaml sets options.logging = CLOUD_LOGGING_ONLY.
# https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts
#
# Whoever runs gcloud builds submit needs cloudbuild.builds.create on the project, permission to
# upload the source to the staging bucket, and iam.serviceAccounts.actAs on the build account: a
# project Owner has all three; otherwise grant Cloud Build Editor (roles/cloudbuild.builds.editor), Storage
# Object User on the staging bucket and Service Account User on the build account (README, "Deploy
# from zero"). https://cloud.google.com/build/docs/iam-roles-permissions

locals {
  build_source_bucket = "${var.project_id}-${var.name_prefix}-build"
}

resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "Pipeline image build (Cloud Build)"
  description  = "Builds the dispatcher and worker images and pushes them to the pipeline's Artifact Registry repository."

  depends_on = [google_project_service.apis]
}

# The source archives gcloud builds submit uploads (instead of the default gs://PROJECT_cloudbuild,
# which gcloud would create and the build account would need a grant on). Only archives of past
# builds: no deletion protection, and they age out after a week.
resource "google_storage_bucket" "build_source" {
  name                        = local.build_source_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = false
  }

  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# Cloud Build fetches the uploaded source archive as the build account.
resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.build_source.name
  role   = "roles/storage.objectViewer"
  member = local.build_sa_member
}

# Pushes the images (cloudbuild.yaml `images:`): artifactregistry.repositories.uploadArtifacts, on
# the pipeline's repository only. https://cloud.google.com/artifact-registry/docs/access-control
resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = local.build_sa_member
}

# Allowed project-wide: build logs go to Cloud Logging (CLOUD_LOGGING_ONLY), written to the project;
# logging.logEntries.create has no narrower resource.
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.build_sa_member
}
