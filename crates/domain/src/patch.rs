//! JSON Merge Patch (RFC 7396) applied to an entity's own JSON, so PATCH reuses the exact
//! validation of create.

use serde::Serialize;
use serde_json::Value;

use crate::validation::ValidationErrors;

/// Applies `patch` to `target` as RFC 7396 says: objects merge, `null` removes, anything else
/// replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Refuses a body that sets any of `read_only`.
pub fn refuse_read_only(body: &Value, read_only: &[&str]) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if let Value::Object(fields) = body {
        for key in read_only.iter().filter(|key| fields.contains_key(**key)) {
            errors.add(*key, "is read-only");
        }
    }
    errors.finish(|| ())
}

/// The entity's JSON with `patch` merged into it and server-owned fields removed: the raw
/// input to parse and validate again.
pub fn apply<E: Serialize>(current: &E, patch: &Value, read_only: &[&str]) -> Result<Value, PatchError> {
    refuse_read_only(patch, read_only).map_err(PatchError::Invalid)?;
    if !patch.is_object() {
        return Err(PatchError::Invalid(ValidationErrors::single("", "a merge patch must be a JSON object")));
    }
    let mut document = serde_json::to_value(current).map_err(|e| PatchError::Internal(e.to_string()))?;
    if let Value::Object(fields) = &mut document {
        for key in read_only {
            fields.remove(*key);
        }
    }
    merge(&mut document, patch);
    strip_nulls(&mut document);
    serde_json::from_value(document).map_err(|e| PatchError::Invalid(ValidationErrors::single("", e.to_string())))
}

/// Entities print absent values as `null`; inputs read absent and `null` alike, so drop them.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, v| !v.is_null());
            fields.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("cannot represent the current record: {0}")]
    Internal(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc_7396_examples() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        let mut target = json!({"a": ["b"]});
        merge(&mut target, &json!({"a": ["c", "d"]}));
        assert_eq!(target, json!({"a": ["c", "d"]}));
    }

    #[test]
    fn read_only_fields_are_refused() {
        let errors = refuse_read_only(&json!({"id": "x", "name": "y"}), &["id", "created_at"]).unwrap_err();
        assert_eq!(errors.errors()[0].field, "id");
    }
}
