#!/usr/bin/env python3
"""Checks a Steward tenant archive independently of Steward.

- every file listed in manifest.json is in the ZIP with the listed size and SHA-256, and every
  member of the ZIP except manifest.json and MANIFEST.sha256 is listed;
- MANIFEST.sha256 (sha256sum format) agrees with the members;
- NDJSON files hold as many records as the manifest says, CSV files (read with Python's csv
  module) as many rows;
- every NDJSON record validates against the dataset's JSON Schema 2020-12 as the data register
  publishes it (files given in --schemas, named <dataset>.schema.json), with `jsonschema`;
- the register (--register, its JSON) lists exactly the datasets the archive holds, the same
  archive files per dataset, and each dataset's CSV header is exactly the register's columns.

Prints one JSON line {"files": n, "records": n, "datasets": [...]} and exits 0; on the first
failure prints the reason on stderr and exits 1.

Usage: check_archive.py --archive ZIP --schemas DIR --register REGISTER.json
"""

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import zipfile

from jsonschema import Draft202012Validator


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--archive", required=True)
    parser.add_argument("--schemas", required=True)
    parser.add_argument("--register", required=True)
    args = parser.parse_args()

    with open(args.register, encoding="utf-8") as handle:
        register = json.load(handle)
    archive = zipfile.ZipFile(args.archive)
    names = set(archive.namelist())
    manifest = json.loads(archive.read("manifest.json"))
    if manifest.get("format") != "steward-tenant-archive":
        fail(f"manifest format is {manifest.get('format')!r}")

    listed = {entry["path"]: entry for entry in manifest["files"]}
    unlisted = names - set(listed) - {"manifest.json", "MANIFEST.sha256"}
    if unlisted:
        fail(f"members not in the manifest: {sorted(unlisted)}")

    sums = {}
    for line in archive.read("MANIFEST.sha256").decode("utf-8").splitlines():
        digest, name = line.split("  ", 1)
        sums[name] = digest

    records = 0
    datasets = {}
    for path, entry in listed.items():
        if path not in names:
            fail(f"{path} is in the manifest but not in the archive")
        content = archive.read(path)
        digest = hashlib.sha256(content).hexdigest()
        if digest != entry["sha256"] or len(content) != entry["bytes"]:
            fail(f"{path}: {len(content)} bytes, sha256 {digest}; manifest says {entry['bytes']}, {entry['sha256']}")
        if sums.get(path) != digest:
            fail(f"{path}: MANIFEST.sha256 says {sums.get(path)}, the file is {digest}")
        dataset = entry.get("dataset")
        if dataset is None:
            continue
        datasets.setdefault(dataset, []).append(path)
        if entry["format"] == "ndjson":
            schema_file = os.path.join(args.schemas, f"{dataset}.schema.json")
            with open(schema_file, encoding="utf-8") as handle:
                schema = json.load(handle)
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema)
            lines = content.decode("utf-8").splitlines()
            if len(lines) != entry["rows"]:
                fail(f"{path}: {len(lines)} records; manifest says {entry['rows']}")
            for number, line in enumerate(lines, start=1):
                record = json.loads(line)
                errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
                if errors:
                    fail(f"{path} line {number}: {errors[0].message} at {list(errors[0].path)}")
                records += 1
        elif entry["format"] == "csv":
            rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
            header, body = rows[0], rows[1:]
            if len(body) != entry["rows"]:
                fail(f"{path}: {len(body)} rows; manifest says {entry['rows']}")
            register_dataset = next((d for d in register["datasets"] if d["name"] == dataset), None)
            if register_dataset is None:
                fail(f"the register does not list dataset {dataset}")
            columns = [column["name"] for column in register_dataset["columns"]]
            if header != columns:
                fail(f"{path}: header {header} is not the register's columns {columns}")

    register_names = sorted(d["name"] for d in register["datasets"])
    if register_names != sorted(datasets):
        fail(f"register datasets {register_names} != archive datasets {sorted(datasets)}")
    for dataset in register["datasets"]:
        if sorted(dataset["archive_files"]) != sorted(datasets[dataset["name"]]):
            fail(f"{dataset['name']}: register files {dataset['archive_files']} != archive {datasets[dataset['name']]}")

    print(json.dumps({"files": len(listed), "records": records, "datasets": sorted(datasets)}))


if __name__ == "__main__":
    main()
