# Inputs. setup.sh applies twice: first without images (buckets, topics, ledger, registry, service
# accounts), then, once Cloud Build has pushed them, with dispatcher_image, worker_image and
# agent_image set.

variable "project_id" {
  type        = string
  description = "The Google Cloud project id everything is created in."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id: 6-30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  type        = string
  description = "The region of the buckets, Cloud Run service and job, Artifact Registry, Cloud Scheduler and (by default) Firestore."
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region like us-central1."
  }
}

variable "zone" {
  type        = string
  description = "The zone the task VMs run in; must be in region."
  default     = "us-central1-a"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "zone must be a zone like us-central1-a."
  }
}

variable "vm_fallback_zones" {
  type        = list(string)
  description = "Zones of region to try a task VM in, in order, when zone has no capacity for it (a stockout); empty: zone alone."
  default     = []

  validation {
    condition     = alltrue([for z in var.vm_fallback_zones : can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", z))]) && length(distinct(var.vm_fallback_zones)) == length(var.vm_fallback_zones)
    error_message = "vm_fallback_zones must be distinct zones like us-central1-b."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (service accounts, topics, service, job, repository, derived bucket names)."
  default     = "pipeline"

  validation {
    # <= 19 characters keeps "<prefix>-dispatcher" within the 30 characters of a service account id.
    condition     = can(regex("^[a-z][a-z0-9-]{0,17}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-19 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "input_bucket" {
  type        = string
  description = "Name of the input bucket (uploads start work); null: <project_id>-<name_prefix>-input."
  default     = null

  validation {
    condition     = var.input_bucket == null || can(regex("^[a-z0-9][-a-z0-9_]{1,61}[a-z0-9]$", var.input_bucket))
    error_message = "input_bucket must be a bucket name: 3-63 lowercase letters, digits, hyphens and underscores."
  }
}

variable "output_bucket" {
  type        = string
  description = "Name of the output bucket (results and logs; never starts work); null: <project_id>-<name_prefix>-output."
  default     = null

  validation {
    condition     = var.output_bucket == null || can(regex("^[a-z0-9][-a-z0-9_]{1,61}[a-z0-9]$", var.output_bucket))
    error_message = "output_bucket must be a bucket name: 3-63 lowercase letters, digits, hyphens and underscores."
  }
}

variable "shared_bucket" {
  type        = string
  description = "Name of the shared bucket copied onto every task VM (SHARED_URI); null: <project_id>-<name_prefix>-shared."
  default     = null

  validation {
    condition     = var.shared_bucket == null || can(regex("^[a-z0-9][-a-z0-9_]{1,61}[a-z0-9]$", var.shared_bucket))
    error_message = "shared_bucket must be a bucket name: 3-63 lowercase letters, digits, hyphens and underscores."
  }
}

variable "firestore_location" {
  type        = string
  description = "Location of the Firestore (default) database: a multi-region (nam5, eur3) or a region; null: the region itself."
  default     = null
}

variable "vm_machine_type" {
  type        = string
  description = "Machine type of task VMs whose route names none (VM_MACHINE_TYPE)."
  default     = "e2-standard-2"

  validation {
    condition     = can(regex("^[a-z0-9]+-[a-z0-9-]+$", var.vm_machine_type))
    error_message = "vm_machine_type must be a machine type like e2-standard-4."
  }
}

variable "vm_spot" {
  type        = bool
  description = "Make every task VM a spot VM (VM_SPOT): cheaper, but preemptible."
  default     = false
}

variable "vm_subnet_cidr" {
  type        = string
  description = "IPv4 range of the task VMs' subnet (network.tf, its own VPC); its size caps how many VMs run at once."
  default     = "10.20.0.0/20"

  validation {
    condition     = can(cidrnetmask(var.vm_subnet_cidr)) && try(tonumber(split("/", var.vm_subnet_cidr)[1]) <= 29, false)
    error_message = "vm_subnet_cidr must be an IPv4 range like 10.20.0.0/20, at most /29."
  }
}

variable "vm_external_ip" {
  type        = bool
  description = "Give every task VM an external IP (VM_EXTERNAL_IP). Off: Google APIs through Private Google Access, other registries through Cloud NAT (vm_nat); with vm_nat off too, task VMs reach Google APIs only."
  default     = false
}

variable "vm_nat" {
  type        = bool
  description = "Cloud NAT for the task VMs' subnet, so VMs without an external IP can pull from registries outside Google (Docker Hub). Costs per VM-hour using it and per GiB processed."
  default     = true
}

variable "vm_image_family" {
  type        = string
  description = "Boot image family of task VMs (VM_IMAGE_FAMILY): Container-Optimized OS, or a family baked by scripts/bake-vm-image.sh."
  default     = "cos-stable"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.vm_image_family))
    error_message = "vm_image_family must be an image family name: lowercase letters, digits and hyphens."
  }
}

variable "vm_image_project" {
  type        = string
  description = "Project of vm_image_family (VM_IMAGE_PROJECT): cos-cloud, or this project for a baked image (the dispatcher then gets compute.imageUser here)."
  default     = "cos-cloud"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.vm_image_project))
    error_message = "vm_image_project must be a project id like cos-cloud."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Protect data: buckets are not force-destroyed (non-empty buckets block destroy) and the Firestore database has delete protection. Set false before destroying everything."
  default     = true
}

variable "reaper_schedule" {
  type        = string
  description = "Cron schedule (Cloud Scheduler, unix-cron) of POST /reap, which deletes VMs that outlived their work."
  default     = "*/5 * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.reaper_schedule))) == 5
    error_message = "reaper_schedule must be a unix-cron expression of five fields, like \"*/5 * * * *\"."
  }
}

variable "reconcile_schedule" {
  type        = string
  description = "Cron schedule (Cloud Scheduler, unix-cron) of POST /reconcile, which closes gaps in the ledger."
  default     = "* * * * *"

  validation {
    condition     = length(split(" ", trimspace(var.reconcile_schedule))) == 5
    error_message = "reconcile_schedule must be a unix-cron expression of five fields, like \"* * * * *\"."
  }
}

variable "scheduled_jobs" {
  type = map(object({
    schedule  = string
    time_zone = optional(string)
    # The body of POST /jobs: {"task": "logreg", "args": [...]} or {"image": "..."} or
    # {"inputUri": "gs://bucket/object"} (see the README's HTTP API).
    request = any
  }))
  description = "Jobs Cloud Scheduler submits on a timetable: name => { schedule (unix-cron), time_zone, request }."
  default     = {}

  validation {
    condition     = alltrue([for name, job in var.scheduled_jobs : length(split(" ", trimspace(job.schedule))) == 5 && can(regex("^[a-z][a-z0-9-]{0,40}$", name))])
    error_message = "scheduled_jobs: each name must be lower-case letters, digits and \"-\" (up to 41), and each schedule a unix-cron expression of five fields."
  }
}

variable "scheduler_time_zone" {
  type        = string
  description = "Time zone of the Cloud Scheduler schedules."
  default     = "Etc/UTC"
}

variable "log_retention_days" {
  type        = number
  description = "Days after which task logs (*.log under the output bucket, written as <object>/<generation>/logs/attempt-N.log or runs/<job id>/logs/attempt-N.log) are deleted."
  default     = 30

  validation {
    condition     = var.log_retention_days >= 1 && floor(var.log_retention_days) == var.log_retention_days
    error_message = "log_retention_days must be a whole number of days, at least 1."
  }
}

variable "dispatcher_image" {
  type        = string
  description = "The dispatcher image (<image_uri>/dispatcher:TAG); empty: the Cloud Run service, its subscriptions and schedules are not created yet."
  default     = ""
}

variable "worker_image" {
  type        = string
  description = "The worker image (<image_uri>/worker:TAG); empty: the Cloud Run job is not created yet. Required when dispatcher_image is set."
  default     = ""
}

variable "agent_image" {
  type        = string
  description = "The VM agent's image (<image_uri>/agent:TAG, from jobs/agent/Dockerfile): every task VM's start-up script runs it, and it runs the task's image. The dispatcher's AGENT_IMAGE. Required when dispatcher_image is set."
  default     = ""
}

variable "worker_timeout_seconds" {
  type        = number
  description = "Default timeout of a worker job execution (a launch may override it per execution)."
  default     = 3600

  validation {
    condition     = var.worker_timeout_seconds >= 60 && var.worker_timeout_seconds <= 604800
    error_message = "worker_timeout_seconds must be between 60 and 604800 (168 h, the Cloud Run Jobs limit)."
  }
}

variable "worker_cpu" {
  type        = string
  description = "vCPUs of the worker job's tasks (Cloud Run's steps: 1, 2, 4, 6 or 8). Every Cloud Run task runs, and is billed, with this; a job that needs more runs on a VM. The dispatcher's WORKER_JOB_CPU."
  default     = "2"

  validation {
    condition     = contains(["1", "2", "4", "6", "8"], var.worker_cpu)
    error_message = "worker_cpu must be 1, 2, 4, 6 or 8."
  }
}

variable "worker_memory" {
  type        = string
  description = "Memory of the worker job's tasks, as Cloud Run writes it (512Mi to 32Gi; more than 4Gi needs 2 vCPU, 8Gi 4, 16Gi 6, 24Gi 8). The dispatcher's WORKER_JOB_MEMORY."
  default     = "4Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.worker_memory))
    error_message = "worker_memory must be like 4Gi or 512Mi."
  }

  # Cloud Run's vCPU and memory table (below); Cloud Run would refuse the job at apply, and the
  # dispatcher at its start (WORKER_JOB_MEMORY). A malformed size or vCPU passes here: the check above
  # and worker_cpu's name it.
  validation {
    # One size in MiB, named once: the condition must read var.worker_memory itself, not a local.
    condition = try(alltrue([
      for mib in [endswith(var.worker_memory, "Gi") ? tonumber(trimsuffix(var.worker_memory, "Gi")) * 1024 : tonumber(trimsuffix(var.worker_memory, "Mi"))] :
      mib >= local.cloud_run_memory_mib_for_cpu[var.worker_cpu].min && mib <= local.cloud_run_memory_mib_for_cpu[var.worker_cpu].max
    ]), true)
    error_message = "worker_memory must fit worker_cpu as Cloud Run requires: 1 vCPU 512Mi to 4Gi, 2 vCPU 512Mi to 8Gi, 4 vCPU 2Gi to 16Gi, 6 vCPU 4Gi to 24Gi, 8 vCPU 4Gi to 32Gi."
  }
}

# Cloud Run's vCPU and memory table, in MiB (https://cloud.google.com/run/docs/configuring/jobs/cpu),
# for worker_memory's validation. Here, beside it, so the variables alone evaluate
# (test/infra/terraform-variables.test.ts plans this file by itself).
locals {
  cloud_run_memory_mib_for_cpu = {
    "1" = { min = 512, max = 4096 }
    "2" = { min = 512, max = 8192 }
    "4" = { min = 2048, max = 16384 }
    "6" = { min = 4096, max = 24576 }
    "8" = { min = 4096, max = 32768 }
  }
}

variable "dispatcher_max_instances" {
  type        = number
  description = "Maximum number of dispatcher instances."
  default     = 10

  validation {
    condition     = var.dispatcher_max_instances >= 1 && var.dispatcher_max_instances <= 100
    error_message = "dispatcher_max_instances must be between 1 and 100."
  }
}

variable "jobs_callers" {
  type        = list(string)
  description = "Emails allowed to call /jobs (people, CI service accounts). Service accounts are recognised by their .gserviceaccount.com domain; every other email is taken as a user."
  default     = []

  validation {
    condition     = alltrue([for email in var.jobs_callers : can(regex("^[^@\\s,]+@[^@\\s,]+\\.[^@\\s,]+$", email))])
    error_message = "jobs_callers must hold email addresses only."
  }
}

variable "jobs_accept_gcloud_tokens" {
  type        = bool
  description = "Let the people of jobs_callers call /jobs with their own `gcloud auth print-identity-token` (JOBS_ACCEPT_GCLOUD_TOKENS): such a token's audience is gcloud's client, so any token the person minted for anything is accepted. Off: people impersonate a service account instead."
  default     = false
}
