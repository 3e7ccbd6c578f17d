//! Imports: data from another tool or another Steward arriving in a tenant, written through the
//! same code paths as the API (validation, blind indexes, erasure ledger, linking, audit): CSV
//! with a column mapping (`csv`) and Steward tenant archives (`archive`).

pub mod archive;
pub mod csv;
