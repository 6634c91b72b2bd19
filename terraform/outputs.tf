# What setup.sh, deploy.sh and destroy.sh read (terraform output -json).

output "project_id" {
  description = "The project."
  value       = var.project_id
}

output "region" {
  description = "The region of the service, job, buckets and registry."
  value       = var.region
}

output "vm_label" {
  description = "The value of the `pipeline` label of this deployment's task VMs (VM_LABEL)."
  value       = var.name_prefix
}

output "zone" {
  description = "The zone of the task VMs."
  value       = var.zone
}

output "input_bucket" {
  description = "The input bucket: an upload here starts a job."
  value       = google_storage_bucket.input.name
}

output "output_bucket" {
  description = "The output bucket: results, logs and _SUCCESS."
  value       = google_storage_bucket.output.name
}

output "shared_bucket" {
  description = "The shared bucket, copied onto every task VM (SHARED_URI)."
  value       = google_storage_bucket.shared.name
}

output "image_uri" {
  description = "The Artifact Registry repository path; images are <image_uri>/dispatcher:TAG and <image_uri>/worker:TAG."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "service_name" {
  description = "The dispatcher's Cloud Run service name (created once dispatcher_image is set)."
  value       = local.service_name
}

output "service_url" {
  description = "The dispatcher's URL; empty until the service exists."
  value       = local.create_service ? google_cloud_run_v2_service.dispatcher[0].uri : ""
}

output "push_audience" {
  description = "The audience of tokens sent to the dispatcher (its deterministic URL); use it for `gcloud auth print-identity-token --audiences`."
  value       = local.service_url
}

output "job_name" {
  description = "The worker's Cloud Run job name (created once worker_image is set)."
  value       = local.job_name
}

output "uploads_topic" {
  description = "The topic of the input bucket's notifications."
  value       = google_pubsub_topic.uploads.name
}

output "completions_topic" {
  description = "The topic tasks report their end to."
  value       = google_pubsub_topic.completions.name
}

output "job_events_topic" {
  description = "The topic of job state changes (QUEUED, LAUNCHED, SUCCEEDED, FAILED, CANCELLED)."
  value       = google_pubsub_topic.job_events.name
}

output "dead_letter_topic" {
  description = "The topic undeliverable pushes end in."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription" {
  description = "The pull subscription that keeps dead letters (7 days)."
  value       = google_pubsub_subscription.dead_letter.name
}

output "dispatcher_service_account" {
  description = "The dispatcher's service account email."
  value       = google_service_account.dispatcher.email
}

output "worker_service_account" {
  description = "The worker's service account email (Cloud Run job and task VMs)."
  value       = google_service_account.worker.email
}

output "push_service_account" {
  description = "The push identity's service account email (Pub/Sub push, Cloud Scheduler)."
  value       = google_service_account.push.email
}

output "build_service_account" {
  description = "The image build's service account as gcloud builds submit --service-account takes it: projects/PROJECT/serviceAccounts/EMAIL."
  value       = "projects/${var.project_id}/serviceAccounts/${google_service_account.build.email}"
}

output "build_source_bucket" {
  description = "The bucket gcloud builds submit stages the source in (--gcs-source-staging-dir gs://BUCKET/source)."
  value       = google_storage_bucket.build_source.name
}

output "vm_network" {
  description = "The task VMs' VPC network (VM_NETWORK), as a partial URL."
  value       = local.vm_network_url
}

output "vm_subnetwork" {
  description = "The task VMs' subnet (VM_SUBNETWORK), as a partial URL; Private Google Access is on."
  value       = local.vm_subnetwork_url
}
