//! The API tested through HTTP, on SQLite or PostgreSQL (see `helpers::backend`).

#![allow(clippy::unwrap_used)]

mod archives;
mod audit;
mod collect;
mod connections;
mod console_auth;
mod console_browser;
mod console_pages;
mod export_jobs;
mod exports;
mod files_at_rest;
mod helpers;
mod imports;
mod isolation;
mod leads;
mod oauth;
mod openapi;
mod organizations;
mod problems;
mod properties;
mod ratelimit;
mod reports;
mod retention;
mod schemathesis;
mod subjects;
mod subjects_every_copy;
mod switching;
mod tls;
mod visitors;
