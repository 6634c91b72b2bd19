# The images: <region>-docker.pkg.dev/<project>/<name_prefix>/{dispatcher,worker}:TAG, pushed by
# Cloud Build (cloudbuild.yaml at the repository root).

resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.region
  repository_id = var.name_prefix
  format        = "DOCKER"
  description   = "Images of the storage-triggered pipeline (dispatcher, worker)."

  # Keep the images a deployment may still run, drop the untagged layers of old builds.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "604800s"
    }
  }

  depends_on = [google_project_service.apis]
}
