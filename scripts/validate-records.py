#!/usr/bin/env python3
"""Validates FlowTap records (JSON lines on standard input) against docs/schema/<event_type>.schema.json.

Each record's schema is chosen by its event_type (netflow_options by netflow.schema.json); references to
common.schema.json are resolved by merging its $defs, so any jsonschema version with Draft 2020-12 works.
Prints one line per record type (records, failures) and the first failures; exits 1 if any record fails.

    flowtap analyze -r capture.pcap | scripts/validate-records.py
"""
import json
import os
import sys

import jsonschema

here = os.path.dirname(os.path.abspath(__file__))
schema_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "docs", "schema")
common = json.load(open(os.path.join(schema_dir, "common.schema.json")))


def inline(node):
    """common.schema.json#/$defs/X becomes #/$defs/X (the common $defs are merged into the schema)."""
    if isinstance(node, dict):
        return {k: (v.replace("common.schema.json#", "#") if k == "$ref" else inline(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v) for v in node]
    return node


validators = {}


def validator(event_type):
    name = "netflow" if event_type == "netflow_options" else event_type
    if name not in validators:
        path = os.path.join(schema_dir, f"{name}.schema.json")
        if not os.path.exists(path):
            validators[name] = None
        else:
            schema = inline(json.load(open(path)))
            schema.setdefault("$defs", {})
            for key, value in common["$defs"].items():
                schema["$defs"].setdefault(key, value)
            jsonschema.Draft202012Validator.check_schema(schema)
            validators[name] = jsonschema.Draft202012Validator(schema)
    return validators[name]


counts, failures, shown = {}, {}, 0
for number, line in enumerate(sys.stdin, 1):
    record = json.loads(line)
    event_type = record.get("event_type", "(none)")
    counts[event_type] = counts.get(event_type, 0) + 1
    v = validator(event_type)
    errors = ["no schema for this event_type"] if v is None else [f"{'/'.join(map(str, e.path))}: {e.message}" for e in v.iter_errors(record)]
    if errors:
        failures[event_type] = failures.get(event_type, 0) + 1
        if shown < 10:
            shown += 1
            print(f"line {number} ({event_type}): {errors[0][:300]}", file=sys.stderr)
for event_type in sorted(counts):
    print(f"{event_type} {counts[event_type]} {failures.get(event_type, 0)}")
sys.exit(1 if failures else 0)
