//! Field-level validation errors, collected so that one answer names every bad field.

use serde::Serialize;

/// One bad field: its dotted path (`first_touch.utm.source`, `answers[2].question`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in one input; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }

    /// Runs `parse` on `value` and records its error under `field`; `None` when absent or bad.
    pub fn check<T, R, E: std::fmt::Display>(
        &mut self,
        field: &str,
        value: Option<R>,
        parse: impl FnOnce(R) -> Result<T, E>,
    ) -> Option<T> {
        match parse_optional(value, parse) {
            Ok(parsed) => parsed,
            Err(message) => {
                self.add(field, message.to_string());
                None
            }
        }
    }

    /// Merges errors of a nested value under `prefix` (`first_touch` + `utm.source`).
    pub fn nest(&mut self, prefix: &str, nested: ValidationErrors) {
        for error in nested.0 {
            let field = if error.field.starts_with('[') {
                format!("{prefix}{}", error.field)
            } else {
                format!("{prefix}.{}", error.field)
            };
            self.0.push(FieldError { field, message: error.message });
        }
    }

    /// Takes the result of validating a nested value, recording its errors under `prefix`.
    pub fn nested<T>(&mut self, prefix: &str, result: Option<Result<T, ValidationErrors>>) -> Option<T> {
        match result? {
            Ok(value) => Some(value),
            Err(nested) => {
                self.nest(prefix, nested);
                None
            }
        }
    }

    /// `Ok(value)` when nothing was recorded, else every recorded error.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() { Ok(value()) } else { Err(self) }
    }
}

fn parse_optional<T, R, E>(value: Option<R>, parse: impl FnOnce(R) -> Result<T, E>) -> Result<Option<T>, E> {
    value.map(parse).transpose()
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}
