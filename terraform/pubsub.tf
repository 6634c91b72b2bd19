# Topics and subscriptions. Storage notifications go to "uploads" and task ends to "completions";
# the dispatcher publishes job state changes to "job-events";
# both are pushed to the dispatcher with an OIDC token of the push service account. A message the
# dispatcher keeps refusing goes, after max_delivery_attempts, to "dead-letter", where a pull
# subscription keeps it for a week.

locals {
  push_ack_deadline_seconds = 300       # the intake awaits a launch for up to about 2 minutes
  message_retention         = "604800s" # 7 days, the most a subscription keeps
  max_delivery_attempts     = 10
  # Named here because the dispatcher's environment needs them, and referring to the subscriptions
  # themselves would be a cycle (they push to the dispatcher's URL).
  uploads_subscription_name     = "${var.name_prefix}-uploads-push"
  completions_subscription_name = "${var.name_prefix}-completions-push"
}

resource "google_pubsub_topic" "uploads" {
  name = "${var.name_prefix}-uploads"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "completions" {
  name = "${var.name_prefix}-completions"

  depends_on = [google_project_service.apis]
}

# Job state changes (QUEUED, LAUNCHED, SUCCEEDED, FAILED, CANCELLED), published by the dispatcher
# from the ledger's outbox for whatever comes next (a loader, a dashboard, a person). It has no
# subscription here: each consumer makes its own, filtered on the attributes (README, Job events).
resource "google_pubsub_topic" "job_events" {
  name = "${var.name_prefix}-job-events"

  # A subscription made later still gets the last week's events (seek), not only those after it.
  message_retention_duration = local.message_retention

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  name = "${var.name_prefix}-dead-letter"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "uploads" {
  count = local.create_service ? 1 : 0

  name                       = local.uploads_subscription_name
  topic                      = google_pubsub_topic.uploads.id
  ack_deadline_seconds       = local.push_ack_deadline_seconds
  message_retention_duration = local.message_retention

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.dispatcher[0].uri}/pubsub/push"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.service_url
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = local.max_delivery_attempts
  }

  # Never delete the subscription for inactivity (the default is after 31 quiet days).
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invokes_dispatcher,
    google_service_account_iam_member.pubsub_agent_mints_push_tokens,
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
  ]
}

resource "google_pubsub_subscription" "completions" {
  count = local.create_service ? 1 : 0

  name                       = local.completions_subscription_name
  topic                      = google_pubsub_topic.completions.id
  ack_deadline_seconds       = local.push_ack_deadline_seconds
  message_retention_duration = local.message_retention

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.dispatcher[0].uri}/pubsub/completions"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.service_url
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = local.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push_invokes_dispatcher,
    google_service_account_iam_member.pubsub_agent_mints_push_tokens,
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
  ]
}

# Keeps dead letters (7 days) for someone to read, replay or drop; nothing consumes it automatically.
# The dispatcher's GET /deadletters lists them and POST /deadletters/:id/replay publishes one again.
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${var.name_prefix}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = local.message_retention
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}
