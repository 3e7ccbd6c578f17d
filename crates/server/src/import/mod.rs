//! Bringing data in: a Steward tenant archive (`archive`).

pub mod archive;
