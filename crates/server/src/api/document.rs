//! The OpenAPI document as served: what the handlers' annotations say, completed with the
//! answers every operation shares, so that no status the server can give is left undocumented.
//!
//! - Every operation behind a bearer token can answer 401 (no or a bad token, with
//!   `WWW-Authenticate`), 403 (the token lacks a scope) and 429 (past the client's budget, with
//!   `Retry-After`).
//! - Every operation that takes a body can answer 400 (unreadable), 413 (too large), 415 (wrong
//!   media type) and 422 (invalid fields).
//! - Every operation with path parameters can answer 404; every one with query parameters 400
//!   (an unknown or malformed parameter) and 422 (a well-formed one that cannot be served).
//!
//! All of them are RFC 9457 problem details (`#/components/schemas/Problem`). Responses written
//! on the operation itself (with a more precise description) are kept.
//!
//! `GET /api/v1/exports/{id}` (an export job, by its UUID) and the streamed export of a dataset
//! share one path segment, and OpenAPI forbids two templates that differ only in their
//! parameter's name. The router tells them apart by the segment: a UUID is a job, anything else
//! a dataset name. Dataset names are a fixed set, so the streamed export is documented as one
//! concrete path per dataset (`/api/v1/exports/leads`, …), which OpenAPI matches before the
//! templated job path: the same rule the router applies.

use serde_json::{Map, Value, json};
use steward_export::DatasetName;

use crate::error::PROBLEM_JSON;

/// Where `exports::stream_export` is annotated; replaced by one concrete path per dataset.
pub const STREAM_EXPORT_TEMPLATE: &str = "/api/v1/exports/{dataset}";

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The served document: the annotations' with the shared answers added (see the module).
pub fn finish(openapi: &utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(openapi).unwrap_or_else(|_| json!({}));
    concrete_exports(&mut document);
    // Path segments that name one of a fixed set, stated as enums.
    let imports = ["leads", "organizations"].map(String::from).to_vec();
    enumerate(&mut document, "/api/v1/imports/{dataset}", "post", "dataset", imports);
    let schemas = DatasetName::ALL.iter().map(|d| format!("{d}.schema.json")).collect();
    enumerate(&mut document, "/data-register/schemas/{file}", "get", "file", schemas);
    retention_changes(&mut document);
    merge_patches(&mut document);
    shared_responses(&mut document);
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else { continue };
            for method in METHODS {
                if let Some(operation) = item.get_mut(method).and_then(Value::as_object_mut) {
                    complete(operation);
                }
            }
        }
    }
    document
}

/// The streamed export, documented once on [`STREAM_EXPORT_TEMPLATE`], as one path per dataset.
fn concrete_exports(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let Some(template) = paths.remove(STREAM_EXPORT_TEMPLATE) else { return };
    for dataset in DatasetName::ALL {
        let mut item = template.clone();
        if let Some(operation) = item.get_mut("get").and_then(Value::as_object_mut) {
            if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) {
                parameters.retain(|parameter| parameter["in"] != "path");
            }
            let id = format!("stream_export_{}", dataset.as_str().replace('-', "_"));
            operation.insert("operationId".into(), Value::String(id));
            operation.insert("summary".into(), Value::String(format!("Streams {} in the asked format.", dataset)));
            if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
                // The path names an existing dataset.
                responses.remove("404");
            }
        }
        paths.insert(format!("/api/v1/exports/{dataset}"), item);
    }
}

/// The body of `PUT /api/v1/retention-policies`, which the handler reads as free JSON: datasets
/// and their days, `null` (kept until deleted) or `"default"`.
fn retention_changes(document: &mut Value) {
    use steward_domain::subject::{MAX_RETENTION_DAYS, RetentionDataset};
    let days = json!({ "oneOf": [
        { "type": "integer", "minimum": 1, "maximum": MAX_RETENTION_DAYS, "description": "Days kept" },
        { "type": "null", "description": "Kept until deleted" },
        { "const": "default", "description": "Back to the default" },
    ] });
    let properties: Map<String, Value> =
        RetentionDataset::ALL.iter().map(|dataset| (dataset.as_str().to_string(), days.clone())).collect();
    let schema = json!({ "type": "object", "properties": properties, "additionalProperties": false });
    let content = document
        .pointer_mut("/paths/~1api~1v1~1retention-policies/put/requestBody/content/application~1json")
        .and_then(Value::as_object_mut);
    if let Some(content) = content {
        content.insert("schema".into(), schema);
    }
}

/// A `PATCH` body is a JSON Merge Patch (RFC 7396) of the create body: any of its fields, none
/// required. Each such body gets a schema of its own, `<Input>Patch`, the create body's without
/// `required`.
fn merge_patches(document: &mut Value) {
    let mut patches = Map::new();
    let schemas = document.pointer("/components/schemas").cloned().unwrap_or_default();
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for item in paths.values_mut() {
        let Some(content) = item.pointer_mut("/patch/requestBody/content").and_then(Value::as_object_mut) else {
            continue;
        };
        for media in content.values_mut() {
            let Some(name) = media.pointer("/schema/$ref").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            let name = name.trim_start_matches("#/components/schemas/").to_string();
            let Some(mut schema) = schemas.get(&name).cloned() else { continue };
            if let Some(schema) = schema.as_object_mut() {
                schema.remove("required");
            }
            let patch = format!("{name}Patch");
            patches.insert(patch.clone(), schema);
            media["schema"] = json!({ "$ref": format!("#/components/schemas/{patch}") });
        }
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        schemas.extend(patches);
    }
}

/// Gives the parameter `name` of an operation the values it takes.
fn enumerate(document: &mut Value, path: &str, method: &str, name: &str, values: Vec<String>) {
    let parameters = document
        .get_mut("paths")
        .and_then(|paths| paths.get_mut(path))
        .and_then(|item| item.get_mut(method))
        .and_then(|operation| operation.get_mut("parameters"))
        .and_then(Value::as_array_mut);
    for parameter in parameters.into_iter().flatten().filter(|p| p["name"] == name) {
        parameter["schema"] = json!({ "type": "string", "enum": values });
    }
}

/// The problem answers operations refer to, in `components.responses`.
fn shared_responses(document: &mut Value) {
    let problem = |description: &str, headers: Value| {
        let mut response = json!({
            "description": description,
            "content": { PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } } },
        });
        if headers.as_object().is_some_and(|h| !h.is_empty()) {
            response["headers"] = headers;
        }
        response
    };
    let none = json!({});
    let responses = json!({
        "BadRequest": problem("A malformed request: an unknown or malformed query parameter, or a body that cannot be read", none.clone()),
        "Unauthorized": problem(
            "No bearer token, or one that is not valid or has expired",
            json!({ "WWW-Authenticate": { "description": "The bearer challenge (RFC 6750)", "schema": { "type": "string" } } }),
        ),
        "Forbidden": problem("The token lacks a scope this operation needs", none.clone()),
        "NotFound": problem("Nothing with this id (or name) exists for your tenant", none.clone()),
        "PayloadTooLarge": problem("The body is larger than this server accepts", none.clone()),
        "UnsupportedMediaType": problem("The body is not of a media type this operation accepts", none.clone()),
        "Validation": problem("Invalid fields or parameters, each named in `errors`; nothing was changed", none.clone()),
        "RateLimited": problem(
            "Past the client's request budget (`api.rate_limit_per_minute`)",
            json!({ "Retry-After": { "description": "Seconds until the next request is accepted", "schema": { "type": "integer", "minimum": 0 } } }),
        ),
    });
    let components = document.as_object_mut().map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(components) = components.and_then(Value::as_object_mut) {
        let existing = components.entry("responses").or_insert_with(|| json!({}));
        if let (Some(existing), Value::Object(added)) = (existing.as_object_mut(), responses) {
            existing.extend(added);
        }
    }
}

/// Adds the shared answers `operation` can give and does not document yet.
fn complete(operation: &mut Map<String, Value>) {
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| requirements.iter().any(|r| r.as_object().is_some_and(|r| !r.is_empty())));
    let parameters = operation.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    let in_path = parameters.iter().any(|p| p["in"] == "path");
    let in_query = parameters.iter().any(|p| p["in"] == "query");
    let body = operation.contains_key("requestBody");
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if secured {
        shared.extend([("401", "Unauthorized"), ("403", "Forbidden"), ("429", "RateLimited")]);
    }
    if body {
        shared.extend([
            ("400", "BadRequest"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("422", "Validation"),
        ]);
    }
    if in_query {
        shared.extend([("400", "BadRequest"), ("422", "Validation")]);
    }
    if in_path {
        shared.push(("404", "NotFound"));
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else { return };
    for (status, name) in shared {
        let shared = json!({ "$ref": format!("#/components/responses/{name}") });
        // 401 and 429 say the same on every operation, with their headers.
        if matches!(status, "401" | "429") {
            responses.insert(status.into(), shared);
        } else {
            responses.entry(status).or_insert(shared);
        }
    }
}
