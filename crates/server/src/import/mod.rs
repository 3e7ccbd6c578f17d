//! Imports: data from another tool or another Steward arriving in a tenant, written through the
//! same code paths as the API (validation, blind indexes, erasure ledger, linking, audit).

pub mod csv;
