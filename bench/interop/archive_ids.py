#!/usr/bin/env python3
"""Print the identities of the rows of a leadscore Parquet archive.

Usage: archive_ids.py ARCHIVE_DIR

Prints one JSON object, {"touchpoints": ["lead_id/event_id", ...],
"mql": ["mql_id", ...]}, every row once in file order (tables without a
directory give []), so that a test can tell whether a row was archived
twice (SCORING.md 8: no duplicate rows after crashes or replays). Reads
with pyarrow.dataset and Hive partitioning, as check_archive.py does;
in-progress temporaries (names starting with ".") are ignored.
"""

import json
import os
import sys

import pyarrow.dataset as ds


def column(root, table, names):
    path = os.path.join(root, table)
    if not os.path.isdir(path):
        return []
    t = ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=names)
    cols = [t.column(n).to_pylist() for n in names]
    return ["/".join(vals) for vals in zip(*cols)]


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = sys.argv[1]
    out = {
        "touchpoints": column(root, "touchpoints", ["lead_id", "event_id"]),
        "mql": column(root, "mql", ["mql_id"]),
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
