//! OAuth 2.0 clients of a tenant and the access tokens they are issued. Secrets and tokens are
//! kept only as SHA-256 hashes: they are 256-bit random values, so a slow password hash adds
//! nothing but latency, while a fast one keeps token checks cheap.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{ClientId, TenantId};
use crate::scope::Scopes;
use crate::time::Timestamp;

/// The SHA-256 of a secret; comparing two is done in constant time by whoever holds them.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretHash(pub [u8; 32]);

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiClient {
    pub id: ClientId,
    pub tenant_id: TenantId,
    pub name: String,
    pub secret_hash: SecretHash,
    pub scopes: Scopes,
    pub created_at: Timestamp,
}

/// An issued bearer token, found again by the hash of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token_hash: SecretHash,
    pub client_id: ClientId,
    pub tenant_id: TenantId,
    pub scopes: Scopes,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}
