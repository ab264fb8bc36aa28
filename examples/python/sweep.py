#!/usr/bin/env python3
"""A parameter sweep: submit 20 jobs at once, gather their results.

    python3 sweep.py [--cards N]

Each job gets its learning rate in the environment (LR) and prints a
"score". Jobs are waited for from a thread pool: the Client is thread-safe
(a connection per thread underneath) and each wait releases the GIL.
Results are printed best first, with what each job cost.
"""

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor

import computenet

# Stand-in for a training script: a deterministic "score" from LR.
TRAIN = 'echo "lr=$LR score=$(echo "$LR" | tr -d . | cut -c1-4)"'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()

    rates = [f"0.{i + 1:03d}" for i in range(args.jobs)]
    with computenet.Client.from_config() as client:
        jobs = {
            lr: client.submit(command=["sh", "-c", TRAIN], env={"LR": lr},
                              name=f"sweep-lr-{lr}", cards=args.cards,
                              max_duration_s=600, priority="low")
            for lr in rates
        }
        print(f"submitted {len(jobs)} jobs: "
              f"{', '.join(job.id for job in jobs.values())}")
        with ThreadPoolExecutor(max_workers=8) as pool:
            ended = dict(zip(jobs, pool.map(lambda j: j.wait(timeout=3600),
                                            jobs.values())))

    failed = [lr for lr, info in ended.items() if not info.succeeded]
    total = sum(info.charged for info in ended.values())
    for lr, info in sorted(ended.items(), key=lambda kv: kv[1].exit_code):
        print(f"lr={lr} {info.job_id} {info.state} exit {info.exit_code} "
              f"on {info.provider or '-'}: {info.card_seconds} card-s, "
              f"charged {info.charged}")
    print(f"{len(ended) - len(failed)} of {len(ended)} succeeded; "
          f"charged {total} minor units in all")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except computenet.Error as e:
        print(f"computenet: {e}", file=sys.stderr)
        sys.exit(1)
