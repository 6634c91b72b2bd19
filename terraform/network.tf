# The task VMs' network: a VPC of their own with one subnet in var.region, passed to the dispatcher
# as VM_NETWORK and VM_SUBNETWORK (run.tf). Task VMs have no external IP unless vm_external_ip, so:
#
# - Google APIs (Artifact Registry's *-docker.pkg.dev for the agent image, Cloud Storage, Pub/Sub,
#   the Compute API the agent deletes its VM with, Cloud Logging) are reached through Private Google
#   Access on the subnet; it needs the network's default route to the default internet gateway,
#   which google_compute_network creates (delete_default_routes_on_create is left false).
#   https://cloud.google.com/vpc/docs/private-google-access
# - Images from any other registry (Docker Hub, ghcr.io, quay.io) come through Cloud NAT (vm_nat, on
#   by default). https://cloud.google.com/nat/docs/overview
#   Cloud NAT "never performs NAT for traffic sent to the select external IP addresses for Google
#   APIs and services" when Private Google Access is on
#   (https://cloud.google.com/nat/docs/nat-product-interactions, read through copies of it), so its
#   per-GiB charge should apply to other registries only; a deployment that pulls only from Artifact
#   Registry can turn NAT off (vm_nat = false) and be sure.
#
# No firewall rule is declared, on purpose: every VPC network has implied rules that deny all ingress
# and allow all egress, and the agent needs no inbound connection (it reads its task from metadata and
# only calls out). Nor does this network have the default network's default-allow-ssh/rdp/icmp rules.
# https://cloud.google.com/firewall/docs/firewalls#default_firewall_rules

locals {
  # The partial URLs networkInterfaces[].network and .subnetwork of instances.insert take
  # (https://cloud.google.com/compute/docs/reference/rest/v1/instances): VM_NETWORK, VM_SUBNETWORK.
  vm_network_url    = "projects/${var.project_id}/global/networks/${google_compute_network.vms.name}"
  vm_subnetwork_url = "projects/${var.project_id}/regions/${var.region}/subnetworks/${google_compute_subnetwork.vms.name}"
}

resource "google_compute_network" "vms" {
  name                    = "${var.name_prefix}-vms"
  description             = "Task VMs of the storage-triggered pipeline (no ingress; egress via Private Google Access and Cloud NAT)."
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.apis]
}

resource "google_compute_subnetwork" "vms" {
  name          = "${var.name_prefix}-vms"
  description   = "Task VMs in ${var.region}."
  region        = var.region
  network       = google_compute_network.vms.id
  ip_cidr_range = var.vm_subnet_cidr

  # VMs without external IPs reach Google APIs and services.
  private_ip_google_access = true
}

# Cloud NAT for the subnet: outbound connections to the internet (image pulls from other registries)
# for VMs without external IPs; unsolicited inbound connections are never let in. It costs an hourly
# charge per VM using it and a charge per GiB processed (README, "Deploy from zero").
resource "google_compute_router" "vms" {
  count = var.vm_nat ? 1 : 0

  name    = "${var.name_prefix}-vms"
  region  = var.region
  network = google_compute_network.vms.id
}

resource "google_compute_router_nat" "vms" {
  count = var.vm_nat ? 1 : 0

  name                               = "${var.name_prefix}-vms"
  router                             = google_compute_router.vms[0].name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "LIST_OF_SUBNETWORKS"

  subnetwork {
    name                    = google_compute_subnetwork.vms.id
    source_ip_ranges_to_nat = ["ALL_IP_RANGES"]
  }
}

# Not an error: a deployment may want task VMs that reach Google APIs only (and so pull images only
# from Artifact Registry). A check block reports this as a warning on plan and apply.
check "vm_egress" {
  assert {
    condition     = var.vm_nat || var.vm_external_ip
    error_message = "vm_nat and vm_external_ip are both false: task VMs reach Google APIs only (Private Google Access), so they can pull images from Artifact Registry but from no other registry."
  }
}
