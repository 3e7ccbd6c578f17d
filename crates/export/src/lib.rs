//! Export writers over [`std::io::Write`]: CSV (RFC 4180), JSON, NDJSON and XLSX.
//!
//! Each dataset defines its columns once ([`Dataset::columns`]); CSV and XLSX lay them out,
//! JSON and NDJSON write the record exactly as the API returns it, and the data register
//! publishes both. Writers hold one record at a time (XLSX: one row, spooled to a temporary
//! file by rust_xlsxwriter's constant-memory mode), so memory does not grow with the export.

pub mod archive;
pub mod body;
pub mod datasets;
mod tabular;
mod xlsx;

use std::fmt;
use std::io::Write;
use std::marker::PhantomData;

use serde::Serialize;
use steward_domain::Timestamp;

pub use body::{JsonColumns, JsonRecord};
pub use datasets::DatasetName;
pub use tabular::{defuse_formula, needs_defusing};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing the XLSX file failed: {0}")]
    Xlsx(String),
    #[error("encoding a record failed: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<csv::Error> for ExportError {
    fn from(error: csv::Error) -> Self {
        match error.into_kind() {
            csv::ErrorKind::Io(error) => Self::Io(error),
            other => Self::Io(std::io::Error::other(format!("{other:?}"))),
        }
    }
}

impl From<rust_xlsxwriter::XlsxError> for ExportError {
    fn from(error: rust_xlsxwriter::XlsxError) -> Self {
        Self::Xlsx(error.to_string())
    }
}

/// The file formats every dataset can be exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Json,
    Ndjson,
    Xlsx,
}

impl Format {
    pub const ALL: [Format; 4] = [Self::Csv, Self::Json, Self::Ndjson, Self::Xlsx];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.as_str().eq_ignore_ascii_case(text.trim()))
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn media_type(&self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// XLSX is a zip whose directory comes last: it cannot be sent before it is complete.
    pub fn streams(&self) -> bool {
        !matches!(self, Self::Xlsx)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cell of a tabular export, borrowed from the record where it can be.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Owned(String),
    Int(i64),
    /// A decimal number (a rate); written in its shortest exact form.
    Number(f64),
    Bool(bool),
    Time(Timestamp),
    Uuid(uuid::Uuid),
    /// A list or map, written as JSON text in one cell.
    Json(String),
}

impl<'a> Cell<'a> {
    pub fn text(value: Option<&'a str>) -> Self {
        value.map_or(Cell::Empty, Cell::Text)
    }

    pub fn time(value: Option<Timestamp>) -> Self {
        value.map_or(Cell::Empty, Cell::Time)
    }

    pub fn uuid(value: Option<uuid::Uuid>) -> Self {
        value.map_or(Cell::Empty, Cell::Uuid)
    }

    pub fn int(value: Option<impl Into<i64>>) -> Self {
        value.map_or(Cell::Empty, |v| Cell::Int(v.into()))
    }

    pub fn uint(value: u64) -> Self {
        Cell::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }

    pub fn display(value: Option<&impl fmt::Display>) -> Self {
        value.map_or(Cell::Empty, |v| Cell::Owned(v.to_string()))
    }

    /// A list or map as JSON text; an empty one is an empty cell.
    pub fn json<T: Serialize + ?Sized>(value: &T, is_empty: bool) -> Self {
        if is_empty { Cell::Empty } else { serde_json::to_string(value).map_or(Cell::Empty, Cell::Json) }
    }
}

/// What a column holds: sets XLSX cell types and widths and documents the register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Id,
    Text,
    Integer,
    /// A decimal number.
    Number,
    Boolean,
    DateTime,
    /// JSON text of a list or map.
    Json,
}

/// How a column reads its cell from a record.
pub type Getter<R> = Box<dyn for<'a> Fn(&'a R) -> Cell<'a> + Send + Sync>;

/// One column of a dataset: its dotted name, kind and how to read it from a record.
pub struct Column<R: 'static> {
    pub name: String,
    pub kind: ColumnKind,
    pub get: Getter<R>,
}

impl<R> Column<R> {
    pub fn new(
        name: impl Into<String>,
        kind: ColumnKind,
        get: impl for<'a> Fn(&'a R) -> Cell<'a> + Send + Sync + 'static,
    ) -> Self {
        Self { name: name.into(), kind, get: Box::new(get) }
    }

    /// This column read through `outer` (a nested struct's columns lifted to its parent).
    pub fn nest<P: 'static>(self, prefix: &str, outer: fn(&P) -> Option<&R>) -> Column<P> {
        let inner = self.get;
        Column {
            name: format!("{prefix}.{}", self.name),
            kind: self.kind,
            get: Box::new(move |parent| outer(parent).map_or(Cell::Empty, &inner)),
        }
    }
}

impl<R> fmt::Debug for Column<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Column").field("name", &self.name).field("kind", &self.kind).finish()
    }
}

/// A record type that can be exported: its dataset name and its columns.
pub trait Dataset: Serialize + Sized + 'static {
    const NAME: DatasetName;
    fn columns() -> &'static [Column<Self>];
}

/// Where XLSX starts a new sheet: Excel holds 1,048,576 rows, one of them the header.
pub const XLSX_ROWS_PER_SHEET: u32 = 1_048_575;
/// Excel's limit for one cell; longer values are cut (see [`xlsx`]).
pub const XLSX_MAX_CELL_CHARS: usize = 32_767;

/// Writes records of one dataset in one format to `out`; [`Writer::finish`] completes the file.
pub struct Writer<W: Write + Send, R: Dataset> {
    inner: Inner<W>,
    rows: u64,
    _records: PhantomData<fn(&R)>,
}

impl<W: Write + Send, R: Dataset> fmt::Debug for Writer<W, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").field("dataset", &R::NAME).field("rows", &self.rows).finish()
    }
}

enum Inner<W: Write + Send> {
    Csv(Box<tabular::CsvSink<W>>),
    /// CSV after its header, taking rows rendered elsewhere ([`Writer::write_csv_rows`]).
    CsvRows(W),
    /// Only while changing from one to the other.
    Taken,
    Json {
        out: W,
        first: bool,
    },
    Ndjson(W),
    Xlsx(Box<xlsx::XlsxSink<W>>),
}

impl<W: Write + Send, R: Dataset> Writer<W, R> {
    pub fn new(format: Format, out: W) -> Result<Self, ExportError> {
        Self::with_sheet_rows(format, out, XLSX_ROWS_PER_SHEET)
    }

    /// As [`Writer::new`], with a smaller XLSX sheet size (tests of the sheet split).
    pub fn with_sheet_rows(format: Format, out: W, rows_per_sheet: u32) -> Result<Self, ExportError> {
        let inner = match format {
            Format::Csv => Inner::Csv(Box::new(tabular::CsvSink::new(out, R::columns())?)),
            Format::Json => Inner::Json { out, first: true },
            Format::Ndjson => Inner::Ndjson(out),
            Format::Xlsx => Inner::Xlsx(Box::new(xlsx::XlsxSink::new(out, R::NAME, R::columns(), rows_per_sheet)?)),
        };
        Ok(Self { inner, rows: 0, _records: PhantomData })
    }

    pub fn write(&mut self, record: &R) -> Result<(), ExportError> {
        match &mut self.inner {
            Inner::Csv(sink) => sink.write(R::columns(), record)?,
            Inner::Json { out, first } => {
                out.write_all(if *first { b"[\n" } else { b",\n" })?;
                *first = false;
                serde_json::to_writer(&mut *out, record)?;
            }
            Inner::Ndjson(out) => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")?;
            }
            Inner::Xlsx(sink) => sink.write(R::columns(), record)?,
            Inner::CsvRows(_) | Inner::Taken => return Err(mixed()),
        }
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Completes the file (closing bracket, XLSX directory) and hands back the sink.
    pub fn finish(self) -> Result<W, ExportError> {
        match self.inner {
            Inner::Csv(sink) => sink.finish(),
            Inner::Json { mut out, first } => {
                out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                out.flush()?;
                Ok(out)
            }
            Inner::Ndjson(mut out) => {
                out.flush()?;
                Ok(out)
            }
            Inner::Xlsx(sink) => sink.finish(),
            Inner::CsvRows(mut out) => {
                out.flush()?;
                Ok(out)
            }
            Inner::Taken => Err(mixed()),
        }
    }
}

fn mixed() -> ExportError {
    ExportError::Io(std::io::Error::other("typed records and rendered CSV rows cannot share one writer"))
}

/// CSV rows (no header) of records given as their stored JSON text, into `out`: the bulk
/// export's fast path (see [`body`]). Each text goes through `keep` first, which may leave the
/// record out; the rows written are counted.
pub struct CsvRows {
    sink: tabular::CsvSink<Vec<u8>>,
    rows: u64,
}

impl fmt::Debug for CsvRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvRows").field("rows", &self.rows).finish()
    }
}

impl CsvRows {
    pub fn new(capacity: usize) -> Self {
        Self { sink: tabular::CsvSink::headerless(Vec::with_capacity(capacity)), rows: 0 }
    }

    pub fn write(&mut self, columns: &JsonColumns, record: &JsonRecord<'_>) -> Result<(), ExportError> {
        self.sink.write_json(columns, record)?;
        self.rows += 1;
        Ok(())
    }

    /// The bytes written and how many rows they hold.
    pub fn finish(self) -> Result<(Vec<u8>, u64), ExportError> {
        Ok((self.sink.finish()?, self.rows))
    }
}

impl<W: Write + Send, R: Dataset> Writer<W, R> {
    /// Appends CSV rows rendered by [`CsvRows`] for this dataset; only for a CSV writer.
    pub fn write_csv_rows(&mut self, bytes: &[u8], rows: u64) -> Result<(), ExportError> {
        // From the first rendered rows on, the header is out and bytes go straight through.
        if let Inner::Csv(_) = self.inner
            && let Inner::Csv(sink) = std::mem::replace(&mut self.inner, Inner::Taken)
        {
            self.inner = Inner::CsvRows(sink.finish()?);
        }
        match &mut self.inner {
            Inner::CsvRows(out) => out.write_all(bytes)?,
            _ => return Err(mixed()),
        }
        self.rows += rows;
        Ok(())
    }
}

/// The column names of a dataset, in file order.
pub fn column_names<R: Dataset>() -> Vec<&'static str> {
    R::columns().iter().map(|column| column.name.as_str()).collect()
}

/// The JSON Schema (2020-12) of one exported JSON record of `R`: the API's own schema (from the
/// same types), with its referenced definitions under `$defs`.
pub fn json_schema<R: Dataset + utoipa::ToSchema>() -> serde_json::Value {
    let mut definitions = Vec::new();
    R::schemas(&mut definitions);
    let mut defs = serde_json::Map::new();
    for (name, schema) in definitions {
        defs.insert(name, serde_json::to_value(schema).unwrap_or_default());
    }
    let mut root = match serde_json::to_value(R::schema()).unwrap_or_default() {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let mut schema = serde_json::Map::new();
    schema.insert("$schema".into(), "https://json-schema.org/draft/2020-12/schema".into());
    schema.insert("$id".into(), format!("/data-register/schemas/{}.schema.json", R::NAME).into());
    schema.insert("title".into(), R::NAME.as_str().into());
    schema.append(&mut root);
    schema.insert("$defs".into(), defs.into());
    let mut value = serde_json::Value::Object(schema);
    relink(&mut value);
    value
}

/// Points OpenAPI component references at `$defs`.
fn relink(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(target)) = map.get_mut("$ref")
                && let Some(name) = target.strip_prefix("#/components/schemas/")
            {
                *target = format!("#/$defs/{name}");
            }
            map.values_mut().for_each(relink);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(relink),
        _ => {}
    }
}
