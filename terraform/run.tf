# The dispatcher (Cloud Run service) and the worker (Cloud Run job). Both exist only once their
# image is given: setup.sh applies the rest first, builds the images with Cloud Build into the
# Artifact Registry repository, then applies again with dispatcher_image, worker_image and
# agent_image (the VM agent's, which the dispatcher hands to every task VM).

locals {
  # The dispatcher's environment: every variable services/dispatcher/src/config.ts requires, plus
  # the optional ones this deployment decides.
  dispatcher_env = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    REGION               = var.region
    ZONE                 = var.zone
    VM_ZONES             = join(",", local.vm_zones)
    OUTPUT_BUCKET        = google_storage_bucket.output.name
    WORKER_JOB           = local.job_name
    # What the worker job below is defined with: an execution can't change its resources, so the
    # router sends a job that needs more to a VM, nor the timeout of a job without its own, so the
    # cost router counts Cloud Run out for a run likely to outlast it (config.ts, cloudRunJob).
    WORKER_JOB_CPU         = var.worker_cpu
    WORKER_JOB_MEMORY      = var.worker_memory
    WORKER_JOB_TIMEOUT     = "${var.worker_timeout_seconds}s"
    WORKER_IMAGE           = var.worker_image
    AGENT_IMAGE            = var.agent_image
    WORKER_SERVICE_ACCOUNT = google_service_account.worker.email
    COMPLETIONS_TOPIC      = google_pubsub_topic.completions.name
    JOB_EVENTS_TOPIC       = google_pubsub_topic.job_events.name
    PUSH_AUDIENCE          = local.service_url
    PUSH_SERVICE_ACCOUNT   = google_service_account.push.email
    # The push account is a caller too: Cloud Scheduler calls /reap and /reconcile with its token.
    JOBS_CALLERS              = join(",", distinct(concat(var.jobs_callers, [google_service_account.push.email])))
    JOBS_ACCEPT_GCLOUD_TOKENS = tostring(var.jobs_accept_gcloud_tokens)
    VM_MACHINE_TYPE           = var.vm_machine_type
    VM_SPOT                   = tostring(var.vm_spot)
    # Two deployments in one project: each reaper deletes only its own VMs (label pipeline=<prefix>).
    VM_LABEL = var.name_prefix
    # The task VMs' network (network.tf) as partial URLs; compute-launcher.ts passes them through.
    VM_NETWORK        = local.vm_network_url
    VM_SUBNETWORK     = local.vm_subnetwork_url
    VM_EXTERNAL_IP    = tostring(var.vm_external_ip)
    VM_IMAGE_FAMILY   = var.vm_image_family
    VM_IMAGE_PROJECT  = var.vm_image_project
    SHARED_URI        = "gs://${google_storage_bucket.shared.name}/"
    LEDGER_COLLECTION = local.ledger_collection
    # GET /deadletters and replay: the dead-letter subscription, the push subscriptions that
    # dead-letter into it, and the topics they read (a replay publishes there).
    DEAD_LETTER_SUBSCRIPTION = google_pubsub_subscription.dead_letter.name
    UPLOADS_SUBSCRIPTION     = local.uploads_subscription_name
    UPLOADS_TOPIC            = google_pubsub_topic.uploads.name
    COMPLETIONS_SUBSCRIPTION = local.completions_subscription_name
  }
}

resource "google_cloud_run_v2_service" "dispatcher" {
  count = local.create_service ? 1 : 0

  name     = local.service_name
  location = var.region
  # Pub/Sub push and Cloud Scheduler reach Cloud Run through Google's front ends, not from a VPC,
  # so an internal-only ingress would refuse them. Access is enforced by IAM instead: only the push
  # account and jobs_callers hold run.invoker (no allUsers), and the dispatcher checks each token's
  # audience and email again.
  ingress = "INGRESS_TRAFFIC_ALL"
  # The service holds no data (the ledger is Firestore): destroy.sh may remove it.
  deletion_protection = false

  template {
    service_account = google_service_account.dispatcher.email
    # A launch may wait on the VM insert for about 2 minutes; the push ack deadline is 300 s.
    timeout = "300s"

    scaling {
      min_instance_count = 0
      max_instance_count = var.dispatcher_max_instances
    }

    containers {
      image = var.dispatcher_image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.dispatcher_env
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 15
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.worker_image != ""
      error_message = "worker_image must be set with dispatcher_image (WORKER_IMAGE)."
    }
    precondition {
      condition     = var.agent_image != ""
      error_message = "agent_image must be set with dispatcher_image (AGENT_IMAGE: the task VMs' agent)."
    }
  }

  # The first request may come as soon as the service exists: its grants come first.
  depends_on = [
    google_project_iam_member.dispatcher_firestore,
    google_project_iam_member.dispatcher_launches_vms,
    google_project_iam_member.dispatcher_project_reads,
    google_compute_subnetwork_iam_member.dispatcher_uses_subnet,
    google_compute_subnetwork_iam_member.dispatcher_uses_external_ips,
    google_project_iam_member.dispatcher_uses_own_images,
    google_service_account_iam_member.dispatcher_acts_as_worker,
    google_storage_bucket_iam_member.dispatcher_reads_input,
    google_storage_bucket_iam_member.dispatcher_reads_output,
    google_storage_bucket_iam_member.dispatcher_moves_latest,
    google_cloud_run_v2_job_iam_member.dispatcher_runs_worker,
    google_cloud_run_v2_job_iam_member.dispatcher_reads_worker_executions,
    google_pubsub_subscription_iam_member.dispatcher_reads_dead_letters,
    google_pubsub_topic_iam_member.dispatcher_replays_uploads,
    google_pubsub_topic_iam_member.dispatcher_replays_completions,
    google_firestore_database.ledger,
  ]
}

resource "google_cloud_run_v2_job" "worker" {
  count = local.create_job ? 1 : 0

  name     = local.job_name
  location = var.region
  # The job holds no data: destroy.sh may remove it.
  deletion_protection = false

  template {
    # One task per execution; the dispatcher overrides env, args and timeout per launch.
    task_count = 1

    template {
      service_account = google_service_account.worker.email
      # The dispatcher owns retries (it records each attempt and may move it to a VM).
      max_retries = 0
      timeout     = "${var.worker_timeout_seconds}s"

      containers {
        image = var.worker_image

        # The worker publishes its end here, as the VM agent does; the dispatcher's
        # /pubsub/completions endpoint records it.
        env {
          name  = "COMPLETIONS_TOPIC"
          value = google_pubsub_topic.completions.name
        }

        resources {
          limits = {
            cpu    = var.worker_cpu
            memory = var.worker_memory
          }
        }
      }
    }
  }

  depends_on = [
    google_storage_bucket_iam_member.worker_reads_input,
    google_storage_bucket_iam_member.worker_writes_output,
    google_storage_bucket_iam_member.worker_reads_shared,
    google_pubsub_topic_iam_member.worker_publishes_completions,
  ]
}
