#!/usr/bin/env python3
"""Validate leadscore MQL events as a non-Go consumer sees them.

Usage:

    kcat -C -J -e -o beginning -X isolation.level=read_committed \\
        -b BROKER -t leadscore.mql | \\
        python3 bench/interop/mqlcheck.py --schema sinks/mqlout/mql.schema.json

Input (stdin, or --input FILE): kcat's -J envelope, one JSON object a line,
with at least "partition", "offset", "key" and "payload" (the MQL event's
JSON text). Lines that are not JSON objects (kcat's "% Reached end" notes
go to stderr, but a stray line may not) are reported as problems.

Output (stdout): one JSON line per record, in input order:

    {"partition": int, "offset": int, "key": str|null, "mql": {...}}

where "mql" is the decoded event (null when it is not JSON).

Checks, each failure printed to stderr as "mqlcheck: ..." and making the
exit status 1:

  - the payload is a JSON object that validates against the JSON schema
    (draft 2020-12, with the "date-time" format enforced: jsonschema's own
    checker when its optional RFC 3339 dependency is installed, else a
    strict RFC 3339 check here);
  - the record key equals the event's lead_id (SCORING.md 6: key = lead id);
  - no mql_id appears twice, and no (lead_id, sequence) pair appears twice
    (either would be a duplicate MQL for a read_committed consumer).

consume_mql.py imports check_records from here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from typing import Any, Iterable

import jsonschema

# RFC 3339 date-time (section 5.6), the same shape Go's time.RFC3339Nano
# produces: a 'T' or 't', optional fraction, 'Z'/'z' or a numeric offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _is_rfc3339(value: Any) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings
    if not _RFC3339.match(value):
        return False
    # Let datetime check the ranges (month 13, day 32, hour 24 ...). It
    # takes at most 6 fraction digits, so trim the fraction for the check.
    text = re.sub(r"\.(\d{1,6})\d*", r".\1", value.upper().replace("Z", "+00:00"))
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def make_validator(schema_path: str) -> jsonschema.protocols.Validator:
    """Returns a validator of the schema file with date-time enforced."""
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    checker = cls.FORMAT_CHECKER
    if "date-time" not in checker.checkers:
        checker = jsonschema.FormatChecker()
        checker.checks("date-time")(_is_rfc3339)
    return cls(schema, format_checker=checker)


def check_records(
    records: Iterable[dict], validator: jsonschema.protocols.Validator
) -> tuple[list[dict], list[str]]:
    """Validates kcat-style records; returns (outputs, problems).

    Each record needs "partition", "offset", "key" and "payload" (str).
    """
    outputs: list[dict] = []
    problems: list[str] = []
    seen_ids: dict[str, str] = {}
    seen_seq: dict[tuple[str, int], str] = {}
    for rec in records:
        where = f"partition {rec.get('partition')} offset {rec.get('offset')}"
        key = rec.get("key")
        payload = rec.get("payload")
        event = None
        if not isinstance(payload, str):
            problems.append(f"{where}: payload is {type(payload).__name__}, not a string")
        else:
            try:
                event = json.loads(payload)
            except ValueError as e:
                problems.append(f"{where}: payload is not JSON: {e}")
        outputs.append(
            {"partition": rec.get("partition"), "offset": rec.get("offset"), "key": key, "mql": event}
        )
        if event is None:
            continue
        for err in sorted(validator.iter_errors(event), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in err.absolute_path) or "(root)"
            problems.append(f"{where}: schema: {path}: {err.message}")
        if not isinstance(event, dict):
            continue
        lead = event.get("lead_id")
        if key != lead:
            problems.append(f"{where}: record key {key!r} is not the event's lead_id {lead!r}")
        mql_id = event.get("mql_id")
        if isinstance(mql_id, str):
            if mql_id in seen_ids:
                problems.append(f"{where}: duplicate mql_id {mql_id} (first at {seen_ids[mql_id]})")
            else:
                seen_ids[mql_id] = where
        seq = event.get("sequence")
        if isinstance(lead, str) and isinstance(seq, int):
            if (lead, seq) in seen_seq:
                problems.append(
                    f"{where}: duplicate MQL {lead} sequence {seq} (first at {seen_seq[(lead, seq)]})"
                )
            else:
                seen_seq[(lead, seq)] = where
    return outputs, problems


def _read_kcat(lines: Iterable[str], problems: list[str]) -> Iterable[dict]:
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            problems.append(f"input line {n}: not JSON: {e}")
            continue
        if not isinstance(rec, dict):
            problems.append(f"input line {n}: not a JSON object")
            continue
        yield rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema", required=True, help="MQL JSON schema file")
    ap.add_argument("--input", help="kcat -J output (default: stdin)")
    args = ap.parse_args(argv)

    validator = make_validator(args.schema)
    problems: list[str] = []
    src = open(args.input, encoding="utf-8") if args.input else sys.stdin
    with src:
        records = list(_read_kcat(src, problems))
    outputs, more = check_records(records, validator)
    problems += more
    for out in outputs:
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    for p in problems:
        print("mqlcheck:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
