# The ledger: Firestore in native mode, one document per job in the "jobs" collection.

resource "google_firestore_database" "ledger" {
  project     = var.project_id
  name        = "(default)"
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  # With deletion_protection the API refuses to delete the ledger and destroy only forgets it
  # (ABANDON: the jobs stay, and a later apply must import it); without, destroy deletes it.
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  deletion_policy         = var.deletion_protection ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.apis]
}

# FIRESTORE_INDEXES (services/dispatcher/src/gcp/firestore-ledger.ts): listing by state orders by
# createdAt, which needs this composite index. Firestore appends __name__ DESCENDING itself; it is
# written out so that the plan matches what Firestore reports.
resource "google_firestore_index" "jobs_by_state" {
  project     = var.project_id
  database    = google_firestore_database.ledger.name
  collection  = local.ledger_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }

  fields {
    field_path = "createdAt"
    order      = "DESCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }
}

# The third index of FIRESTORE_INDEXES: the head of the queue, QUEUED jobs by their order (dueBy).
resource "google_firestore_index" "jobs_queued" {
  project     = var.project_id
  database    = google_firestore_database.ledger.name
  collection  = local.ledger_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }

  fields {
    field_path = "queue.dueBy"
    order      = "ASCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}

# The second index of FIRESTORE_INDEXES: a rule's SUCCEEDED jobs, newest first, which duration
# estimates learn from.
resource "google_firestore_index" "jobs_by_rule" {
  project     = var.project_id
  database    = google_firestore_database.ledger.name
  collection  = local.ledger_collection
  query_scope = "COLLECTION"

  fields {
    field_path = "rule"
    order      = "ASCENDING"
  }

  fields {
    field_path = "state"
    order      = "ASCENDING"
  }

  fields {
    field_path = "createdAt"
    order      = "DESCENDING"
  }

  fields {
    field_path = "__name__"
    order      = "DESCENDING"
  }
}

# The fieldOverrides of FIRESTORE_INDEXES: template, history and attempts are never queried, so they
# are exempt from single-field indexing (an empty index_config), and cost no index writes.
resource "google_firestore_field" "unindexed" {
  for_each = toset(["template", "history", "attempts"])

  project    = var.project_id
  database   = google_firestore_database.ledger.name
  collection = local.ledger_collection
  field      = each.value

  index_config {}
}
