//! CSV rows written straight from a record's stored JSON text, without building the typed
//! record first: the bulk export's fast path.
//!
//! A stored body is the record as `serde_json` wrote it, and every column's dotted name is the
//! path of its value in that JSON (`first_touch.utm.source`). So a cell can be read from the
//! text: strings unescaped (borrowed when they hold no escape), numbers and booleans as written,
//! lists and maps as their JSON text, which is exactly what [`crate::Cell::json`] would write
//! again. Skipping the typed record saves parsing every timestamp, id and answer only to print
//! it back, and the allocations that go with them. The rows are the same bytes as the typed
//! path's: `tests::the_json_path_writes_the_same_rows_as_the_typed_path` checks it field by
//! field, and [`JsonColumns::of`] refuses datasets whose columns it cannot read this way.

use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::{ColumnKind, Dataset, ExportError};

/// One JSON object's members as they stand in the text: keys and unparsed values.
#[derive(Debug)]
pub struct JsonRecord<'a> {
    members: Vec<(&'a str, &'a RawValue)>,
    /// Where the last lookup found its member: columns follow the order the record's fields
    /// are written in, so the next one is most often right after it.
    next: std::cell::Cell<usize>,
}

impl<'a> JsonRecord<'a> {
    pub fn parse(json: &'a str) -> Result<Self, ExportError> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Vec<(&'de str, &'de RawValue)>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(32));
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(members)
            }
        }
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let members = (&mut deserializer).deserialize_map(Members)?;
        deserializer.end()?;
        Ok(Self { members, next: std::cell::Cell::new(0) })
    }

    /// The member's value unless it is missing or null.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        let start = self.next.get().min(self.members.len());
        let (after, before) = self.members.split_at(start);
        let found = before.iter().chain(after).position(|(name, _)| *name == key)?;
        let index = (start + found) % self.members.len();
        self.next.set(index + 1);
        Some(self.members[index].1).filter(|value| value.get() != "null")
    }

    /// True when the member is present and not null.
    pub fn is_set(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// A column read from JSON text: its path and kind.
#[derive(Debug, Clone)]
struct JsonColumn {
    path: Vec<String>,
    kind: ColumnKind,
}

/// A dataset's columns as paths into its records' JSON.
#[derive(Debug, Clone)]
pub struct JsonColumns {
    columns: Vec<JsonColumn>,
}

/// One cell as read from JSON text.
pub(crate) enum JsonCell<'a> {
    Empty,
    /// Text to write as it is (numbers, booleans, ids, times).
    Plain(&'a str),
    /// Text a spreadsheet might run: defused like every text cell.
    Text(std::borrow::Cow<'a, str>),
}

impl JsonColumns {
    /// The columns of `R`, when every one of them can be read from JSON text (no decimal
    /// numbers, whose text form differs between JSON and the typed writer).
    pub fn of<R: Dataset>() -> Option<Self> {
        let columns: Vec<JsonColumn> = R::columns()
            .iter()
            .map(|column| JsonColumn { path: column.name.split('.').map(str::to_string).collect(), kind: column.kind })
            .collect();
        columns.iter().all(|column| column.kind != ColumnKind::Number).then_some(Self { columns })
    }

    /// Every cell of one record, in column order, handed to `cell`.
    pub(crate) fn cells<'a>(
        &self,
        record: &JsonRecord<'a>,
        mut cell: impl FnMut(JsonCell<'_>) -> Result<(), ExportError>,
    ) -> Result<(), ExportError> {
        // Nested objects, parsed once for all their columns (which stand next to each other).
        let mut open: Vec<(&str, Option<JsonRecord<'a>>)> = Vec::new();
        for column in &self.columns {
            let (key, parents) = column.path.split_last().ok_or_else(|| invalid("a column has no name"))?;
            let shared = open.iter().zip(parents).take_while(|((name, _), parent)| name == parent).count();
            open.truncate(shared);
            for parent in &parents[shared..] {
                let outer = match open.last() {
                    None => Some(record),
                    Some((_, object)) => object.as_ref(),
                };
                let inner = match outer.and_then(|object| object.get(parent)) {
                    Some(value) => Some(JsonRecord::parse(value.get())?),
                    None => None,
                };
                open.push((parent.as_str(), inner));
            }
            let object = match open.last() {
                None => Some(record),
                Some((_, object)) => object.as_ref(),
            };
            let Some(value) = object.and_then(|object| object.get(key)) else {
                cell(JsonCell::Empty)?;
                continue;
            };
            let raw = value.get();
            match column.kind {
                ColumnKind::Integer | ColumnKind::Boolean => cell(JsonCell::Plain(raw))?,
                ColumnKind::Json if raw == "[]" || raw == "{}" => cell(JsonCell::Empty)?,
                ColumnKind::Json => cell(JsonCell::Text(raw.into()))?,
                ColumnKind::Id | ColumnKind::DateTime => cell(JsonCell::Plain(string(raw)?.as_ref()))?,
                ColumnKind::Text => cell(JsonCell::Text(string(raw)?))?,
                ColumnKind::Number => return Err(invalid("decimal numbers are written by the typed path")),
            }
        }
        Ok(())
    }
}

/// A JSON string's text, borrowed when it holds no escape.
fn string(raw: &str) -> Result<std::borrow::Cow<'_, str>, ExportError> {
    match serde_json::from_str::<&str>(raw) {
        Ok(text) => Ok(text.into()),
        Err(_) => Ok(serde_json::from_str::<String>(raw)?.into()),
    }
}

fn invalid(message: &str) -> ExportError {
    ExportError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string()))
}
