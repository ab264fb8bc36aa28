#!/usr/bin/env python3
"""Write your ledger statement as CSV, every line verified first.

    python3 statement_to_csv.py [--since 2025-01-01] [--until 2025-02-01] [OUT.csv]

Every line's inclusion proof was checked against a checkpoint signed by
your broker (its key from COMPUTENET_BROKER_IDENTITY) before it is written.
With no OUT, writes to stdout. The net amount goes to stderr.
"""

import argparse
import csv
import sys

import computenet


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="CSV file (default: stdout)")
    parser.add_argument("--since", help="ms, YYYY-MM-DD or ISO time (UTC)")
    parser.add_argument("--until", help="exclusive; same forms")
    args = parser.parse_args()

    with computenet.Client.from_config() as client:
        statement = client.statement(since=args.since, until=args.until)
    out = open(args.out, "w", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(statement.columns)
        writer.writerows(statement.rows())
    finally:
        if args.out:
            out.close()
    print(f"{statement.account}: {len(statement)} lines, net "
          f"{statement.net_amount} minor units (verified against broker "
          f"{statement.broker_id}'s checkpoint of "
          f"{statement.checkpoint_tree_size} entries)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except computenet.Error as e:
        print(f"computenet: {e}", file=sys.stderr)
        sys.exit(1)
