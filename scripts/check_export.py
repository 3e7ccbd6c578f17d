"""Reads one dataset's exports with third-party readers and compares them to the stored records.

Used by the HTTP tests (crates/server/tests/api/exports.rs). Independent of Steward's own code:
it flattens each expected record by the dotted column names itself and applies the documented
rules (formula defusing in CSV, JSON text for lists and maps, real date cells in XLSX).

    check_export.py EXPECTED.json SCHEMA.json DIR   (DIR holds export.csv/.json/.ndjson/.xlsx)
"""

import csv
import datetime as dt
import json
import math
import sys
from pathlib import Path

import jsonschema
import openpyxl
import pandas

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def is_plain_number(text):
    """An optional sign, ASCII digits, and at most one decimal point between digits."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    whole, dot, fraction = digits.partition(".")
    if not dot:
        fraction = "0"

    def all_digits(part):
        return part != "" and part.isascii() and part.isdigit()

    return all_digits(whole) and all_digits(fraction)


def defused(text):
    """The documented CSV rule: a leading apostrophe before formula triggers, plain numbers kept."""
    if text.startswith(TRIGGERS) and not is_plain_number(text):
        return "'" + text
    return text


def dig(record, column):
    value = record
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def empty(value):
    return value is None or value == [] or value == {}


def check_text_cell(where, column, expected, cell):
    """A CSV cell (read as text) against the expected JSON value."""
    if empty(expected):
        assert cell == "", f"{where} {column}: expected an empty cell, got {cell!r}"
    elif isinstance(expected, bool):
        assert cell == ("true" if expected else "false"), f"{where} {column}: {cell!r} != {expected!r}"
    elif isinstance(expected, float):
        assert math.isclose(float(cell), expected), f"{where} {column}: {cell!r} != {expected!r}"
    elif isinstance(expected, (int, float)):
        assert cell == str(expected), f"{where} {column}: {cell!r} != {expected!r}"
    elif isinstance(expected, str):
        assert cell == defused(expected), f"{where} {column}: {cell!r} != {defused(expected)!r}"
    else:
        assert json.loads(cell) == expected, f"{where} {column}: JSON text {cell!r} != {expected!r}"


def parse_time(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.timezone.utc).replace(tzinfo=None)


def check_xlsx_cell(where, column, expected, cell):
    if empty(expected):
        assert cell is None, f"{where} {column}: expected an empty cell, got {cell!r}"
    elif isinstance(cell, dt.datetime):
        assert isinstance(expected, str), f"{where} {column}: a date cell for {expected!r}"
        delta = abs((cell - parse_time(expected)).total_seconds())
        assert delta < 0.001, f"{where} {column}: {cell} != {expected}"
    elif isinstance(expected, bool):
        assert cell is expected, f"{where} {column}: {cell!r} != {expected!r}"
    elif isinstance(expected, (int, float)):
        assert isinstance(cell, (int, float)) and math.isclose(cell, expected), f"{where} {column}: {cell!r}"
    elif isinstance(expected, str):
        assert cell == expected, f"{where} {column}: {cell!r} != {expected!r} (XLSX is never defused)"
    else:
        assert json.loads(cell) == expected, f"{where} {column}: JSON text {cell!r} != {expected!r}"


def main(expected_path, schema_path, folder):
    folder = Path(folder)
    expected = json.loads(Path(expected_path).read_text(encoding="utf-8"))
    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    assert expected, "no expected records"

    # JSON: one array, equal to the records; every record valid against the published schema.
    exported = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    assert exported == expected, "JSON export differs from the stored records"
    validator = jsonschema.Draft202012Validator(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    for index, record in enumerate(exported):
        errors = sorted(validator.iter_errors(record), key=str)
        assert not errors, f"record {index} breaks the schema: {errors[0].message} at {list(errors[0].path)}"

    # NDJSON: one object per line.
    lines = (folder / "export.ndjson").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected, "NDJSON export differs"

    # CSV with the csv module: RFC 4180 with CRLF.
    raw = (folder / "export.csv").read_bytes()
    assert raw.endswith(b"\r\n"), "CSV records end in CRLF"
    with open(folder / "export.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, strict=True))
    header, body = rows[0], rows[1:]
    assert len(body) == len(expected), f"CSV has {len(body)} rows for {len(expected)} records"
    for index, (row, record) in enumerate(zip(body, expected)):
        assert len(row) == len(header), f"CSV row {index} has {len(row)} cells"
        for column, cell in zip(header, row):
            check_text_cell(f"csv row {index}", column, dig(record, column), cell)

    # CSV with pandas, every cell as text.
    frame = pandas.read_csv(folder / "export.csv", dtype=str, keep_default_na=False, encoding="utf-8")
    assert list(frame.columns) == header, "pandas reads the same header"
    assert len(frame) == len(expected), f"pandas reads {len(frame)} rows"
    for index, record in enumerate(expected):
        for column in header:
            check_text_cell(f"pandas row {index}", column, dig(record, column), frame.at[index, column])

    # XLSX with openpyxl: typed cells, a header on every sheet.
    workbook = openpyxl.load_workbook(folder / "export.xlsx", read_only=True)
    records = iter(expected)
    count = 0
    for sheet in workbook.worksheets:
        sheet_rows = sheet.iter_rows(values_only=True)
        assert list(next(sheet_rows)) == header, f"sheet {sheet.title} repeats the header"
        for row in sheet_rows:
            row = list(row) + [None] * (len(header) - len(row))
            record = next(records)
            for column, cell in zip(header, row):
                check_xlsx_cell(f"xlsx {sheet.title} row {count}", column, dig(record, column), cell)
            count += 1
    assert count == len(expected), f"XLSX has {count} rows for {len(expected)} records"
    print(f"OK {len(expected)} records, {len(header)} columns, {len(workbook.worksheets)} sheet(s)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
