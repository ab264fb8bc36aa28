#!/usr/bin/env python3
"""Derives pod lists from openb_pod_list_default.csv, in the spirit of the
lists published with "Beware of Fragmentation" (gpushare, multigpu, gpuspec):
the same pods, with the mix shifted, so the arrival protocol can be run on
more than one workload.

    bench/data/derive_openb.py OUT_DIR
    build/bench/trace_replay --protocol fgd --pods OUT_DIR/<list>.csv

Lists written (fixed seed, so every run derives the same files):
  openb_pod_list_share_only.csv   only the pods asking for a share of a card
  openb_pod_list_whole_only.csv   only the pods asking for whole cards
  openb_pod_list_multigpu30.csv   30% of the 1-card pods ask for 2-8 cards instead
  openb_pod_list_gpuspec33.csv    a third of the pods limited to one GPU model,
                                  drawn by the cards' share of the cluster
  openb_pod_list_untimed.csv      the default list without its time columns
"""
import csv
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE = os.path.join(HERE, "alibaba-gpu-2023")


def read(name):
    with open(os.path.join(TRACE, name), newline="") as f:
        return list(csv.DictReader(f))


def write(path, rows, fields):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    pods = read("openb_pod_list_default.csv")
    nodes = read("openb_node_list_gpu_node.csv")
    fields = list(pods[0].keys())
    gpu = [p for p in pods if int(p["num_gpu"]) > 0]
    rng = random.Random(2023)

    def share(p):
        return int(p["num_gpu"]) == 1 and 0 < int(p["gpu_milli"] or 0) < 1000

    write(os.path.join(out, "openb_pod_list_share_only.csv"), [p for p in gpu if share(p)], fields)
    write(os.path.join(out, "openb_pod_list_whole_only.csv"), [p for p in gpu if not share(p)], fields)

    multi = []
    for p in gpu:
        q = dict(p)
        if not share(p) and int(p["num_gpu"]) == 1 and rng.random() < 0.30:
            q["num_gpu"] = str(rng.choice([2, 4, 8]))
            q["cpu_milli"] = str(int(p["cpu_milli"]) * int(q["num_gpu"]))
            q["memory_mib"] = str(int(p["memory_mib"]) * int(q["num_gpu"]))
        multi.append(q)
    write(os.path.join(out, "openb_pod_list_multigpu30.csv"), multi, fields)

    cards = {}
    for n in nodes:
        cards[n["model"]] = cards.get(n["model"], 0) + int(n["gpu"])
    models = sorted(cards)
    weights = [cards[m] for m in models]
    spec = []
    for p in gpu:
        q = dict(p)
        if rng.random() < 1 / 3:
            q["gpu_spec"] = rng.choices(models, weights)[0]
        spec.append(q)
    write(os.path.join(out, "openb_pod_list_gpuspec33.csv"), spec, fields)

    untimed = [f for f in fields if f not in ("creation_time", "deletion_time", "scheduled_time")]
    write(os.path.join(out, "openb_pod_list_untimed.csv"), pods, untimed)


if __name__ == "__main__":
    main()
