# The three buckets and the input bucket's notification. Only the input bucket starts work: the
# output bucket has no notification (a result must never trigger the pipeline again).

resource "google_storage_bucket" "input" {
  name                        = local.input_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = false
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "output" {
  name                        = local.output_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = false
  }

  # Task logs go to <job prefix>/logs/attempt-N.log (outputPrefix in core), so they do not share a leading
  # prefix: a `matches_prefix = ["logs/"]` rule would match none of them. The rule matches the
  # suffix instead; a task's own output ending in .log ages out with the logs.
  lifecycle_rule {
    condition {
      age            = var.log_retention_days
      matches_suffix = [".log"]
    }
    action {
      type = "Delete"
    }
  }

  # A batch's manifest is read when its tasks start; a week on, it only explains an old execution.
  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["_pipeline/batches/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "shared" {
  name                        = local.shared_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = false
  }

  depends_on = [google_project_service.apis]
}

# The Cloud Storage service agent publishes the notifications.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id

  depends_on = [google_project_service.apis]
}

resource "google_storage_notification" "uploads" {
  bucket         = google_storage_bucket.input.name
  topic          = google_pubsub_topic.uploads.id
  payload_format = "JSON_API_V1"
  event_types    = ["OBJECT_FINALIZE"]

  # The notification is checked against the topic's policy when it is created.
  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_uploads]
}
