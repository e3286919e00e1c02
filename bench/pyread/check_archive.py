#!/usr/bin/env python3
"""Check that a leadscore Parquet archive reads the same in pyarrow, DuckDB and pandas.

Usage: check_archive.py ARCHIVE_DIR

Reads each table (touchpoints, mql, dead_letters) under ARCHIVE_DIR with
Hive partitioning (dt=YYYY-MM-DD) through pyarrow.dataset, DuckDB's
read_parquet(..., hive_partitioning=true) and pandas.read_parquet, and prints
one JSON object:

    {table: {"rows": n, "columns": {name: pyarrow type}, "duckdb_columns": {...},
             "pandas_dtypes": {...}, "dt": [dates]}}

Exits 1 if the readers disagree on row counts or dt values, if an event-time
column is not a timestamp type in every reader, or if dt is not a partition
column. Tables without a directory are reported with rows 0.
"""

import json
import os
import sys

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

TIMESTAMPS = {
    "touchpoints": ["occurred_at"],
    "mql": ["qualified_at", "emitted_at"],
    "dead_letters": ["dead_lettered_at"],
}


def check_table(root, table, problems):
    path = os.path.join(root, table)
    if not os.path.isdir(path):
        return {"rows": 0, "columns": {}, "dt": []}

    def problem(msg):
        problems.append(f"{table}: {msg}")

    # pyarrow: files whose names start with "." (in-progress temporaries) are ignored.
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    at = dataset.to_table()
    columns = {f.name: str(f.type) for f in at.schema}
    if "dt" not in dataset.partitioning.schema.names:
        problem("pyarrow: dt is not a partition column")
    pa_dt = sorted({str(v) for v in at.column("dt").to_pylist()}) if "dt" in columns else []

    # DuckDB: the glob matches final files only (temporaries end in .tmp).
    glob = os.path.join(path, "*", "*.parquet")
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    duck_columns = {name: str(typ) for name, typ in zip(rel.columns, rel.types)}
    duck_rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()[0]
    duck_dt = sorted(
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT CAST(dt AS VARCHAR) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchall()
    )

    # pandas (pyarrow engine, which applies Hive partitioning to directories).
    df = pd.read_parquet(path)
    pd_dtypes = {c: str(t) for c, t in df.dtypes.items()}
    pd_dt = sorted({str(v) for v in df["dt"].tolist()}) if "dt" in df.columns else []

    # Every value decoded, as a query of the columns would: a string
    # column holding bytes that are not UTF-8 fails here in both readers.
    try:
        at.to_pylist()
    except Exception as e:  # noqa: BLE001 - any failure to decode is the finding
        problem(f"pyarrow: values do not decode: {e}")
    try:
        con.execute(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()
    except Exception as e:  # noqa: BLE001
        problem(f"duckdb: values do not decode: {e}")

    if not (at.num_rows == duck_rows == len(df)):
        problem(f"row counts differ: pyarrow {at.num_rows}, duckdb {duck_rows}, pandas {len(df)}")
    if not (pa_dt == duck_dt == pd_dt):
        problem(f"dt values differ: pyarrow {pa_dt}, duckdb {duck_dt}, pandas {pd_dt}")
    if "dt" not in duck_columns:
        problem("duckdb: dt is not a column")
    if "dt" not in pd_dtypes:
        problem("pandas: dt is not a column")

    for col in TIMESTAMPS[table]:
        if col not in columns:
            problem(f"column {col} missing")
            continue
        if not pa.types.is_timestamp(at.schema.field(col).type):
            problem(f"pyarrow: {col} is {columns[col]}, not a timestamp")
        if not duck_columns.get(col, "").startswith("TIMESTAMP"):
            problem(f"duckdb: {col} is {duck_columns.get(col)}, not a timestamp")
        if not pd.api.types.is_datetime64_any_dtype(df[col]):
            problem(f"pandas: {col} is {pd_dtypes.get(col)}, not a timestamp")

    if table == "mql" and at.num_rows > 0:
        # contributors is a list of structs; every reader must see the same elements.
        pa_n = sum(len(v or []) for v in at.column("contributors").to_pylist())
        duck_n = con.execute(
            f"SELECT coalesce(sum(len(contributors)), 0) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchone()[0]
        pd_n = sum(len(v) if v is not None else 0 for v in df["contributors"])
        if not (pa_n == duck_n == pd_n):
            problem(f"contributors differ: pyarrow {pa_n}, duckdb {duck_n}, pandas {pd_n}")

    return {
        "rows": at.num_rows,
        "columns": columns,
        "duckdb_columns": duck_columns,
        "pandas_dtypes": pd_dtypes,
        "dt": pa_dt,
    }


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = sys.argv[1]
    problems = []
    out = {t: check_table(root, t, problems) for t in TIMESTAMPS}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    for p in problems:
        print("check_archive:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
