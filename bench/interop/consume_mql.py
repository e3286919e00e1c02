#!/usr/bin/env python3
"""Read leadscore MQL events with confluent-kafka (librdkafka), read_committed.

Usage:

    python3 bench/interop/consume_mql.py --brokers HOST:PORT --topic T \\
        --count N --schema sinks/mqlout/mql.schema.json \\
        [--timeout 30] [--linger 2] [--group G]

Subscribes with a fresh consumer group (or --group) from the earliest
offset, with isolation.level=read_committed, until N records have been
read or --timeout seconds have passed; after the N-th record it keeps
reading for --linger seconds more, so that a duplicate or an extra event
arriving just after is seen. Offsets are not committed.

Output (stdout): one JSON line per record, in the order read, as
mqlcheck.py prints them: {"partition", "offset", "key", "mql"}.

Exit status: 0 when exactly the records read pass mqlcheck's checks (JSON
schema, key = lead_id, no duplicate mql_id or (lead_id, sequence)) and at
least N were read; 1 on a failed check; 3 when fewer than N arrived in
time (the records read are still printed and checked). Problems go to
stderr prefixed "consume_mql:".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqlcheck  # noqa: E402  (a sibling file, found through sys.path)


def _text(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", errors="replace")


def consume(brokers: str, topic: str, count: int, timeout: float, linger: float, group: str) -> tuple[list[dict], list[str]]:
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "client.id": "leadscore-interop-consume-mql",
        }
    )
    records: list[dict] = []
    problems: list[str] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        stop_at = time.monotonic() + linger if count == 0 else None
        while True:
            now = time.monotonic()
            if stop_at is not None and now >= stop_at:
                break
            if stop_at is None and now >= deadline:
                break
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                if err.fatal() or not err.retriable():
                    raise KafkaException(err)
                problems.append(f"retriable consumer error: {err}")
                continue
            records.append(
                {
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "key": _text(msg.key()),
                    "payload": _text(msg.value()),
                }
            )
            if len(records) == count and stop_at is None:
                stop_at = time.monotonic() + linger
    finally:
        consumer.close()
    return records, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True, help="records expected")
    ap.add_argument("--schema", required=True, help="MQL JSON schema file")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for --count records")
    ap.add_argument("--linger", type=float, default=2.0, help="seconds to keep reading after --count records")
    ap.add_argument("--group", default="", help="consumer group (default: a fresh one)")
    args = ap.parse_args(argv)
    if args.count < 0:
        ap.error("--count must be >= 0")

    validator = mqlcheck.make_validator(args.schema)
    group = args.group or "leadscore-interop-" + uuid.uuid4().hex
    records, soft = consume(args.brokers, args.topic, args.count, args.timeout, args.linger, group)
    outputs, problems = mqlcheck.check_records(records, validator)
    for out in outputs:
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
    for p in soft:
        print("consume_mql: note:", p, file=sys.stderr)
    for p in problems:
        print("consume_mql:", p, file=sys.stderr)
    if problems:
        return 1
    if len(records) < args.count:
        print(
            f"consume_mql: {len(records)} of {args.count} records from {args.topic} within {args.timeout:g}s",
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
