//! CSV per RFC 4180 (CRLF line ends, a header row, fields quoted when needed) and the rule that
//! defuses spreadsheet formulas.
//!
//! **Formula defusing.** A spreadsheet opening a CSV evaluates a cell that starts with `=`, `+`,
//! `-` or `@` (and some also after a leading tab or carriage return) as a formula, which an
//! attacker can fill through a form field. Such a text cell is written with a leading
//! apostrophe (`'`), which spreadsheets show as text and readers can strip. A cell that is
//! wholly a plain number (`+358401234567`, `-12.5`) is left alone: no spreadsheet runs it, and
//! phone numbers stay intact. Numbers, booleans, dates and ids are never defused. XLSX needs no
//! defusing: its cells are typed, and text cells are never evaluated.

use std::io::Write;

use crate::body::{JsonCell, JsonColumns, JsonRecord};
use crate::{Cell, Column, ExportError};

const TRIGGERS: [u8; 6] = [b'=', b'+', b'-', b'@', b'\t', b'\r'];

/// True when `text` would be run as a formula by a spreadsheet.
pub fn needs_defusing(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(first) if TRIGGERS.contains(first) => !is_plain_number(text),
        _ => false,
    }
}

/// `text` as written to a CSV cell: with a leading apostrophe when it would be a formula.
pub fn defuse_formula(text: &str) -> std::borrow::Cow<'_, str> {
    if needs_defusing(text) { format!("'{text}").into() } else { text.into() }
}

/// An optional sign, digits, and at most one decimal point between digits.
fn is_plain_number(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction)
}

pub struct CsvSink<W: Write> {
    writer: csv::Writer<W>,
    scratch: String,
}

impl<W: Write> CsvSink<W> {
    pub fn new<R>(out: W, columns: &[Column<R>]) -> Result<Self, ExportError> {
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .buffer_capacity(64 * 1024)
            .from_writer(out);
        writer.write_record(columns.iter().map(|column| column.name.as_str()))?;
        Ok(Self { writer, scratch: String::with_capacity(64) })
    }

    /// Rows only, no header: a part of an export rendered on its own (see [`crate::body`]).
    pub fn headerless(out: W) -> Self {
        let writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .has_headers(false)
            .buffer_capacity(64 * 1024)
            .from_writer(out);
        Self { writer, scratch: String::with_capacity(64) }
    }

    /// One record's row read from its JSON text (see [`crate::body`]).
    pub fn write_json(&mut self, columns: &JsonColumns, record: &JsonRecord<'_>) -> Result<(), ExportError> {
        columns.cells(record, |cell| {
            match cell {
                JsonCell::Empty => self.writer.write_field([])?,
                JsonCell::Plain(text) => self.writer.write_field(text)?,
                JsonCell::Text(text) => self.text(&text)?,
            }
            Ok(())
        })?;
        self.writer.write_record(None::<&[u8]>)?;
        Ok(())
    }

    pub fn write<R>(&mut self, columns: &[Column<R>], record: &R) -> Result<(), ExportError> {
        for column in columns {
            match (column.get)(record) {
                Cell::Empty => self.writer.write_field([])?,
                Cell::Text(text) => self.text(text)?,
                Cell::Owned(text) | Cell::Json(text) => self.text(&text)?,
                Cell::Int(n) => self.writer.write_field(itoa(n, &mut self.scratch))?,
                Cell::Number(n) => {
                    use std::fmt::Write as _;
                    self.scratch.clear();
                    let _ = write!(self.scratch, "{n}");
                    self.writer.write_field(self.scratch.as_bytes())?
                }
                Cell::Bool(b) => self.writer.write_field(if b { "true" } else { "false" })?,
                Cell::Time(at) => {
                    let mut buffer = [0; steward_domain::time::RFC3339_MAX];
                    let length = at.write_rfc3339(&mut buffer);
                    self.writer.write_field(&buffer[..length])?
                }
                Cell::Uuid(id) => {
                    let mut buffer = uuid::Uuid::encode_buffer();
                    self.writer.write_field(id.hyphenated().encode_lower(&mut buffer).as_bytes())?
                }
            }
        }
        self.writer.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), ExportError> {
        if needs_defusing(text) {
            self.scratch.clear();
            self.scratch.push('\'');
            self.scratch.push_str(text);
            self.writer.write_field(self.scratch.as_bytes())?;
        } else {
            self.writer.write_field(text)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<W, ExportError> {
        self.writer.into_inner().map_err(|error| ExportError::Io(std::io::Error::other(error.to_string())))
    }
}

fn itoa(n: i64, scratch: &mut String) -> &[u8] {
    use std::fmt::Write as _;
    scratch.clear();
    let _ = write!(scratch, "{n}");
    scratch.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_triggers_are_defused_but_plain_numbers_and_inner_signs_are_not() {
        for hostile in ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=", "-", "+"] {
            assert!(needs_defusing(hostile), "{hostile:?}");
            assert_eq!(defuse_formula(hostile), format!("'{hostile}"));
        }
        for harmless in ["+358401234567", "-12.5", "12", "a=b", "Aino", "", " =1", "'=1", "1-2"] {
            assert!(!needs_defusing(harmless), "{harmless:?}");
            assert_eq!(defuse_formula(harmless), harmless);
        }
        for tricky in ["+1.2.3", "-.5", "+5.", "--5", "+358 40 123"] {
            assert!(needs_defusing(tricky), "{tricky:?} is not a plain number");
        }
    }
}
