//! How a record's body is written: its JSON, sealed with the tenant's key and bound to its row
//! (table, tenant, id) so that a body cannot be moved to another row or tenant unnoticed.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::doc::DocKind;
use crate::vault::TenantKeys;
use crate::{StoreError, TenantCtx};

/// The authenticated context of a row's body.
pub fn context(ctx: &TenantCtx, kind: DocKind, id: &uuid::Uuid) -> Vec<u8> {
    let mut context = Vec::with_capacity(64);
    context.extend_from_slice(kind.table().as_bytes());
    context.push(0);
    context.extend_from_slice(ctx.tenant_id().as_uuid().as_bytes());
    context.extend_from_slice(id.as_bytes());
    context
}

pub fn encode<R: Serialize>(record: &R, keys: &TenantKeys, context: &[u8]) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(format!("encoding failed: {e}")))?;
    Ok(keys.seal(context, &json))
}

pub fn decode<R: DeserializeOwned>(body: &[u8], keys: &TenantKeys, context: &[u8]) -> Result<R, StoreError> {
    parse(text(&keys.open(context, body)?)?)
}

/// [`decode`] of a body the caller owns and no longer needs: it is decrypted where it lies.
pub fn decode_in_place<R: DeserializeOwned>(
    body: &mut [u8],
    keys: &TenantKeys,
    context: &[u8],
) -> Result<R, StoreError> {
    parse(open_in_place(body, keys, context)?)
}

/// A body decrypted where it lies, as the JSON text it holds (checked as UTF-8 once).
pub fn open_in_place<'a>(body: &'a mut [u8], keys: &TenantKeys, context: &[u8]) -> Result<&'a str, StoreError> {
    text(keys.open_in_place(context, body)?)
}

fn text(json: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Authenticated by the caller: these bytes are what `encode` wrote from validated values.
fn parse<R: DeserializeOwned>(json: &str) -> Result<R, StoreError> {
    steward_domain::trust::trusted(|| serde_json::from_str(json)).map_err(|e| StoreError::Corrupt(e.to_string()))
}
