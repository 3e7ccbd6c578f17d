//! Every writer read back by an independent reader: the csv crate, serde_json and calamine.
//! (The Python readers — csv, pandas, openpyxl, jsonschema — run in the server's HTTP tests.)

#![allow(clippy::unwrap_used)]

use calamine::{Data, Reader, Xlsx};
use serde_json::{Value, json};
use steward_domain::IpNetwork;
use steward_domain::{Lead, LeadId, LeadInput, Organization, OrganizationId, OrganizationInput, Timestamp};
use steward_export::{
    CsvRows, Dataset, Format, JsonColumns, JsonRecord, Writer, column_names, defuse_formula, json_schema,
};
use steward_store::{Actor, ActorKind, AuditEntry, Target};

/// One-line fields (names, tags, UTM values) refuse control characters; these are the hostile
/// strings they can hold.
const HOSTILE: [&str; 8] = [
    "comma, inside",
    "quote \" inside",
    "'apostrophe first",
    "-1+1",
    "emoji 🦀👩‍💻",
    "עברית RTL",
    "=HYPERLINK(\"http://evil\")",
    "@SUM(A1:A2)",
];

/// Multi-line fields (answers, custom field values) also keep tabs and line breaks.
const MULTILINE: [&str; 4] = ["line\r\nbreak", "tab\there", "lf\nonly", "=1\r\n+2"];

fn leads() -> Vec<Lead> {
    let now = Timestamp::parse("2026-11-20T08:30:15.123456Z").unwrap();
    HOSTILE
        .iter()
        .enumerate()
        .map(|(n, text)| {
            let input: LeadInput = serde_json::from_value(json!({
                "first_name": text,
                "last_name": if n % 2 == 0 { Value::Null } else { json!("-minus") },
                "company_name": "+plus Oy",
                "email": format!("lead.{n}@example.fi"),
                "phone": "+358401234567",
                "tags": [text, "b2b"],
                "custom_fields": {"note": MULTILINE[n % MULTILINE.len()], "empty": ""},
                "answers": [{"question": text, "answer": MULTILINE[n % MULTILINE.len()], "answered_at": "2026-11-19T10:00:00Z"}],
                "score": n * 10,
                "first_touch": {"utm": {"source": text}, "occurred_at": "2026-11-19T10:00:00Z"},
                "consent": {"marketing": n % 2 == 0, "captured_at": "2026-11-19T10:00:00Z"},
            }))
            .unwrap();
            input.validate(LeadId::new(), now, now).unwrap()
        })
        .collect()
}

fn write<R: Dataset>(format: Format, records: &[R], rows_per_sheet: u32) -> Vec<u8> {
    let mut writer = Writer::<Vec<u8>, R>::with_sheet_rows(format, Vec::new(), rows_per_sheet).unwrap();
    for record in records {
        writer.write(record).unwrap();
    }
    assert_eq!(writer.rows(), records.len() as u64);
    writer.finish().unwrap()
}

#[test]
fn csv_is_rfc_4180_with_crlf_a_header_and_defused_formulas() {
    let leads = leads();
    let bytes = write(Format::Csv, &leads, 10);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("id,contact_id,first_name,last_name,email,phone,"));
    assert!(text.contains("\r\n"));
    assert_eq!(text.matches("\r\n").count(), leads.len() + 1, "every record, header included, ends in CRLF");
    assert_eq!(text.matches('\n').count(), leads.len() + 1, "line breaks in values are inside JSON text");

    let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, column_names::<Lead>());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), leads.len());
    for (row, lead) in rows.iter().zip(&leads) {
        assert_eq!(&row[col("id")], lead.id.to_string());
        let first_name = lead.first_name.as_deref().unwrap();
        assert_eq!(&row[col("first_name")], defuse_formula(first_name));
        assert_eq!(&row[col("last_name")], lead.last_name.as_deref().map_or(String::new(), |l| format!("'{l}")));
        assert_eq!(&row[col("company_name")], "'+plus Oy");
        assert_eq!(&row[col("phone")], "+358401234567", "a plain number is not defused");
        assert_eq!(&row[col("first_touch.utm.source")], defuse_formula(first_name));
        assert_eq!(&row[col("first_touch.occurred_at")], "2026-11-19T10:00:00Z");
        assert_eq!(&row[col("created_at")], "2026-11-20T08:30:15.123456Z");
        let tags: Vec<String> = serde_json::from_str(&row[col("tags")]).unwrap();
        assert_eq!(tags, lead.tags);
        let custom: Value = serde_json::from_str(&row[col("custom_fields")]).unwrap();
        assert_eq!(custom, json!({"note": lead.custom_fields["note"], "empty": ""}));
        let answers: Value = serde_json::from_str(&row[col("answers")]).unwrap();
        assert_eq!(answers, serde_json::to_value(&lead.answers).unwrap());
        assert_eq!(&row[col("score")], lead.score.unwrap().to_string());
        assert_eq!(&row[col("bot.id")], "", "missing nested object gives empty cells");
        assert_eq!(&row[col("consent.marketing")], lead.consent.as_ref().unwrap().marketing.to_string());
    }
}

#[test]
fn json_and_ndjson_read_back_as_the_records() {
    let leads = leads();
    let array: Vec<Lead> = serde_json::from_slice(&write(Format::Json, &leads, 10)).unwrap();
    assert_eq!(array, leads);
    let empty: Vec<Lead> = serde_json::from_slice(&write::<Lead>(Format::Json, &[], 10)).unwrap();
    assert!(empty.is_empty());
    let ndjson = write(Format::Ndjson, &leads, 10);
    let lines: Vec<Lead> =
        String::from_utf8(ndjson).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines, leads);
}

#[test]
fn xlsx_has_typed_cells_a_header_and_splits_sheets() {
    let leads = leads();
    let bytes = write(Format::Xlsx, &leads, 3);
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(workbook.sheet_names(), ["leads", "leads (2)", "leads (3)"]);
    let header = column_names::<Lead>();
    let mut seen = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook.worksheet_range(&name).unwrap();
        let mut rows = range.rows();
        let first: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(first, header, "every sheet repeats the header");
        seen.extend(rows.map(|row| row.to_vec()));
    }
    assert_eq!(seen.len(), leads.len());
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for (row, lead) in seen.iter().zip(&leads) {
        assert_eq!(row[col("first_name")], Data::String(lead.first_name.clone().unwrap()), "no defusing in XLSX");
        assert_eq!(row[col("score")], Data::Float(f64::from(lead.score.unwrap())));
        match &row[col("created_at")] {
            Data::DateTime(at) => {
                let expected = lead.created_at.unix_micros() as f64 / 86_400_000_000.0 + 25_569.0;
                assert!((at.as_f64() - expected).abs() < 1e-9, "a real date cell at the same instant");
            }
            other => panic!("created_at is not a date cell: {other:?}"),
        }
        assert_eq!(row[col("consent.marketing")], Data::Bool(lead.consent.as_ref().unwrap().marketing));
        assert_eq!(row[col("bot.id")], Data::Empty);
    }
}

#[test]
fn organizations_export_in_every_format() {
    let now = Timestamp::now();
    let input: OrganizationInput = serde_json::from_value(json!({
        "name": "Esimerkki Oy", "domain": "esimerkki.fi", "business_id": "0112038-9",
        "employee_range": {"min": 10, "max": 49}, "address": {"city": "Tampere", "country_code": "FI"},
    }))
    .unwrap();
    let org = input.validate(OrganizationId::new(), Default::default(), now, now).unwrap();
    for format in Format::ALL {
        let bytes = write(format, std::slice::from_ref(&org), 10);
        assert!(!bytes.is_empty(), "{format}");
    }
    let csv = String::from_utf8(write(Format::Csv, &[org], 10)).unwrap();
    assert!(csv.contains("employee_range.min,employee_range.max"));
    assert!(csv.contains("Esimerkki Oy,esimerkki.fi"));
    let _: Vec<Organization> = Vec::new();
}

#[test]
fn the_json_schema_is_2020_12_with_local_definitions() {
    let schema = json_schema::<Lead>();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["title"], "leads");
    assert!(schema["properties"]["email"].is_object());
    let text = schema.to_string();
    assert!(!text.contains("#/components/"), "every reference points into $defs");
    assert!(schema["$defs"]["Touch"].is_object(), "{text}");
}

#[test]
fn audit_log_entries_are_flat_rows_with_json_text_for_ids_and_detail() {
    let at = Timestamp::parse("2026-11-20T08:30:15.123456Z").unwrap();
    let id = uuid::Uuid::now_v7();
    let entry = |seq: i64, actor: Actor, detail: Value, ids: Vec<uuid::Uuid>| AuditEntry {
        seq,
        id,
        at,
        actor,
        action: "lead.deleted".into(),
        target: Target { kind: "leads".into(), count: ids.len() as u64, ids },
        detail,
        ip_network: Some(IpNetwork::parse("198.51.100.77").unwrap()),
        prev_hash: "00".repeat(32),
        hash: "ab".repeat(32),
        damaged: None,
    };
    let entries = [
        entry(1, Actor { kind: ActorKind::Client, id: Some("=client".into()) }, json!({"note": "-x"}), vec![id]),
        entry(2, Actor { kind: ActorKind::System, id: None }, json!({}), Vec::new()),
    ];
    assert_eq!(
        column_names::<AuditEntry>(),
        [
            "seq",
            "id",
            "at",
            "actor.kind",
            "actor.id",
            "action",
            "target.kind",
            "target.count",
            "target.ids",
            "detail",
            "ip_network",
            "prev_hash",
            "hash",
            "damaged"
        ]
    );
    let csv = write(Format::Csv, &entries, 10);
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let first: Vec<&str> = rows[0].iter().collect();
    let ids = format!("[\"{id}\"]");
    let (zeros, hash) = ("00".repeat(32), "ab".repeat(32));
    let id = id.to_string();
    assert_eq!(
        first,
        [
            "1",
            &id,
            "2026-11-20T08:30:15.123456Z",
            "client",
            "'=client",
            "lead.deleted",
            "leads",
            "1",
            &ids,
            r#"{"note":"-x"}"#,
            "198.51.100.0/24",
            &zeros,
            &hash,
            ""
        ]
    );
    assert_eq!((&rows[1][4], &rows[1][8], &rows[1][9]), ("", "", ""), "no actor id, no ids, an empty detail");
    let json: Vec<Value> = serde_json::from_slice(&write(Format::Json, &entries, 10)).unwrap();
    assert_eq!(json[0]["actor"], json!({"kind": "client", "id": "=client"}), "JSON is never defused");
    assert_eq!(json_schema::<AuditEntry>()["title"], "audit-log");
    assert!(!write(Format::Xlsx, &entries, 10).is_empty());
}

/// The bulk export's fast path, CSV rows read straight from the stored JSON, writes exactly the
/// typed path's bytes: for hostile leads and for a demo tenant's leads, organizations and
/// visitor profiles (restriction marks, empty and missing values, nested objects included).
#[test]
fn the_json_path_writes_the_same_rows_as_the_typed_path() {
    fn both<R: Dataset>(records: &[R]) {
        assert!(!records.is_empty());
        let typed = String::from_utf8(write(Format::Csv, records, steward_export::XLSX_ROWS_PER_SHEET)).unwrap();
        let columns = JsonColumns::of::<R>().expect("every column reads from JSON");
        let mut writer = Writer::<Vec<u8>, R>::new(Format::Csv, Vec::new()).unwrap();
        // Two parts, as two export threads would render them.
        for part in records.chunks(records.len().div_ceil(2)) {
            let mut rows = CsvRows::new(0);
            for record in part {
                let json = serde_json::to_string(record).unwrap();
                rows.write(&columns, &JsonRecord::parse(&json).unwrap()).unwrap();
            }
            let (bytes, count) = rows.finish().unwrap();
            assert_eq!(count, part.len() as u64);
            writer.write_csv_rows(&bytes, count).unwrap();
        }
        assert_eq!(writer.rows(), records.len() as u64);
        let fast = String::from_utf8(writer.finish().unwrap()).unwrap();
        for (n, (fast, typed)) in fast.split("\r\n").zip(typed.split("\r\n")).enumerate() {
            assert_eq!(fast, typed, "{} line {n}", R::NAME);
        }
        assert_eq!(fast, typed, "{}", R::NAME);
    }
    let mut hostile = leads();
    hostile[1].restricted_at = Some(Timestamp::parse("2026-11-21T00:00:00Z").unwrap());
    both(&hostile);
    let data = steward_demo::generate(
        &steward_demo::DemoConfig::demo(Timestamp::parse("2026-11-22T12:00:00Z").unwrap()).scaled(0.05),
    );
    both(&data.leads);
    both(&data.organizations);
    both(&data.visitors);

    // A record whose restriction is set reads as set; one without, or with null, does not.
    let restricted = serde_json::to_string(&hostile[1]).unwrap();
    assert!(JsonRecord::parse(&restricted).unwrap().is_set("restricted_at"));
    assert!(!JsonRecord::parse(&serde_json::to_string(&hostile[0]).unwrap()).unwrap().is_set("restricted_at"));
    assert!(!JsonRecord::parse(r#"{"restricted_at":null}"#).unwrap().is_set("restricted_at"));
    assert!(JsonRecord::parse("[1]").is_err() && JsonRecord::parse("{} x").is_err());
}
