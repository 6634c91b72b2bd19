# Custom roles, where no predefined role is narrow enough. Each holds exactly the permissions that
# calls in the permission table (test/infra/permissions.ts) need, and the permission-contract test
# fails on a permission no call needs. Where each is granted, and under which condition: iam.tf.
# Custom roles cannot be granted on an instance before it exists, so the instance-level ones are
# granted on the project under IAM conditions on the resource's type and name, which Compute Engine
# supports for instances and disks: https://cloud.google.com/iam/docs/conditions-resource-attributes

# The dispatcher's VM launcher: what instances.insert checks for the VMs compute-launcher.ts makes,
# plus get (inspect) and delete (cancel, and the reaper). Permissions of a VM's creation:
# https://cloud.google.com/compute/docs/access/create-enable-service-accounts-for-instances
# https://cloud.google.com/compute/docs/reference/rest/v1/instances/insert
resource "google_project_iam_custom_role" "vm_launcher" {
  role_id     = replace("${var.name_prefix}_vm_launcher", "-", "_")
  title       = "Pipeline VM launcher"
  description = "Create, read and delete pipeline task VMs and their boot disks (granted under a name condition)."
  permissions = [
    "compute.disks.create",                     # the boot disk made from initializeParams
    "compute.disks.delete",                     # the boot disk (autoDelete) goes with the instance
    "compute.instances.create",                 # checked on the new instance's name
    "compute.instances.delete",                 # cancel, and the reaper
    "compute.instances.get",                    # inspect
    "compute.instances.setLabels",              # labels pipeline, job-id, attempt
    "compute.instances.setMetadata",            # pipeline-task, startup-script and the rest
    "compute.instances.setServiceAccount",      # the worker account on the VM
    "compute.instances.updateShieldedVmConfig", # shieldedInstanceConfig (secure boot, vTPM)
  ]
}

# Reads the dispatcher makes on the project itself, where no name condition can apply: the reaper's
# instances.list (checked on the project, not on an instance), waiting on the insert's zone operation
# (zoneOperations.wait needs compute.zoneOperations.get), the region's quotas for the queue
# (regions.get, region-quotas.ts), and reading a Run job's operation when RunJob named no execution
# (run-launcher.ts; Run operations are not children of the job).
# https://cloud.google.com/compute/docs/reference/rest/v1/instances/list
# https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/wait
# https://cloud.google.com/compute/docs/reference/rest/v1/regions/get
# https://cloud.google.com/run/docs/reference/iam/permissions
resource "google_project_iam_custom_role" "dispatcher_project_reads" {
  role_id     = replace("${var.name_prefix}_dispatcher_reads", "-", "_")
  title       = "Pipeline dispatcher project reads"
  description = "List instances, read zone operations, region quotas and Cloud Run operations."
  permissions = [
    "compute.instances.list",
    "compute.regions.get",
    "compute.zoneOperations.get",
    "run.operations.get",
  ]
}

# Placing a VM's interface in the task subnet (granted on that subnet only). An external IP on it
# needs compute.subnetworks.useExternalIp as well, granted only when vm_external_ip is on.
# https://cloud.google.com/compute/docs/access/create-enable-service-accounts-for-instances
resource "google_project_iam_custom_role" "vm_subnet_user" {
  role_id     = replace("${var.name_prefix}_vm_subnet_user", "-", "_")
  title       = "Pipeline VM subnet user"
  description = "Put pipeline task VMs in the task subnet."
  permissions = ["compute.subnetworks.use"]
}

resource "google_project_iam_custom_role" "vm_subnet_external_ip" {
  count = var.vm_external_ip ? 1 : 0

  role_id     = replace("${var.name_prefix}_vm_external_ip", "-", "_")
  title       = "Pipeline VM external IP"
  description = "Give pipeline task VMs an external IP in the task subnet."
  permissions = ["compute.subnetworks.useExternalIp"]
}

# A VM deletes itself: the agent through the Compute API, the start-up script's EXIT trap with curl.
# Neither waits on the operation nor reads the instance, so delete alone; the boot disk goes with the
# instance (autoDelete). compute.instanceAdmin.v1 would let it create VMs and touch every disk.
# https://cloud.google.com/compute/docs/reference/rest/v1/instances/delete
resource "google_project_iam_custom_role" "vm_self_delete" {
  role_id     = replace("${var.name_prefix}_vm_self_delete", "-", "_")
  title       = "Pipeline VM self-delete"
  description = "Delete a Compute Engine instance and its boot disk: what a pipeline task VM needs to delete itself."
  # The boot disk is autoDelete. Whether deleting the instance also checks compute.disks.delete on it
  # could not be settled from the docs read; without it the VM would go and its disk stay, billed,
  # where the reaper (which lists instances) never looks. It is granted on pipeline-* disks only.
  permissions = ["compute.disks.delete", "compute.instances.delete"]
}
