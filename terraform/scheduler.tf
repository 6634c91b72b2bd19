# Cloud Scheduler calls the dispatcher's maintenance routes with an OIDC token of the push account
# (which is in JOBS_CALLERS and holds run.invoker): /reap deletes VMs that outlived their work,
# /reconcile closes gaps in the ledger (lost completions, stuck executions).

locals {
  schedules = local.create_service ? {
    reap      = { path = "/reap", schedule = var.reaper_schedule, description = "Delete pipeline VMs that outlived their work." }
    reconcile = { path = "/reconcile", schedule = var.reconcile_schedule, description = "Reconcile the ledger with executions, VMs and outputs." }
  } : {}
}

resource "google_cloud_scheduler_job" "maintenance" {
  for_each = local.schedules

  name             = "${var.name_prefix}-${each.key}"
  region           = var.region
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "300s"

  # The next run comes soon enough: no retries piling up behind a slow one.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.dispatcher[0].uri}${each.value.path}"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.service_url
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invokes_dispatcher]
}

# Work on a timetable, declared here instead of through POST /jobs with "cron": each entry becomes a
# Cloud Scheduler job that posts its request body to POST /jobs at its times. The dispatcher routes
# and runs it like any submission; Cloud Scheduler keeps the timetable (and its time zone).
resource "google_cloud_scheduler_job" "scheduled_jobs" {
  for_each = local.create_service ? var.scheduled_jobs : {}

  name             = "${var.name_prefix}-job-${each.key}"
  region           = var.region
  description      = "Submit ${each.key} to the pipeline (POST /jobs)."
  schedule         = each.value.schedule
  time_zone        = coalesce(each.value.time_zone, var.scheduler_time_zone)
  attempt_deadline = "300s"

  # A refused submission is not retried into a pile: the next time comes anyway.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.dispatcher[0].uri}/jobs"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode(each.value.request))

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.service_url
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invokes_dispatcher]
}
