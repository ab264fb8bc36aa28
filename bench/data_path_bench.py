"""Bundle throughput through the federation (issue 11): a consumer at north
uploads its inputs for a job that may run only in west, so north relays
every chunk to west and keeps none of it; the job copies its inputs to its
output directory; the consumer fetches the result back from west's site
through west and north. Both directions cross two brokers. Uses the chaos
test's federation (tests/chaos/chaos.py: three brokers, two sites each, all
the shipped binaries as child processes on loopback).

  /usr/bin/python3 bench/data_path_bench.py --build-dir build --mib 256
  /usr/bin/python3 bench/data_path_bench.py --build-dir build --short

Prints one line per run: MiB, upload (submit incl. packing) and fetch
(download, checks and unpacking) seconds and MiB/s. Exit 1 if a run fails
or the fetched files differ from the inputs. Standard library only.
"""
import argparse
import filecmp
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "chaos"))
import chaos  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--short", action="store_true",
                        help="4 MiB once: that the path works, for ctest")
    args = parser.parse_args()
    if args.short:
        args.mib, args.runs = 4, 1
    run_dir = tempfile.mkdtemp(prefix="computenet-data-bench-")
    harness = chaos.Run(argparse.Namespace(
        seed=1, build_dir=args.build_dir, run_dir=run_dir, usage_interval_s=0))
    failed = False
    try:
        harness.set_up()
        harness.start_federation()
        inputs = os.path.join(run_dir, "in", "data")
        os.makedirs(inputs)
        # Incompressible, in files of 16 MiB at most (a tar is not compressed).
        left = args.mib
        index = 0
        while left > 0:
            size = min(left, 16)
            with open(os.path.join(inputs, "part-%03d.bin" % index), "wb") as f:
                f.write(os.urandom(size << 20))
            left -= size
            index += 1
        uploads, fetches = [], []
        for attempt in range(args.runs):
            # A new file each run, so nothing is deduplicated.
            with open(os.path.join(inputs, "salt"), "w") as f:
                f.write("%d %f\n" % (attempt, time.time()))
            start = time.time()
            rc, out, err = harness.cli("north", [
                "submit", "--region", "west", "--input", inputs,
                "--max-duration", "600", "--", "sh", "-c",
                'cp -r data "$COMPUTENET_OUTPUT_DIR"/'], timeout=900)
            uploaded = time.time() - start
            if rc != 0:
                print("submit failed: %s %s" % (out, err))
                return 1
            job = out.strip().splitlines()[-1]
            rc, out, err = harness.cli("north", ["wait", job, "--timeout", "900"],
                                       timeout=960)
            if rc != 0:
                print("job %s did not succeed: %s %s" % (job, out, err))
                return 1
            result = os.path.join(run_dir, "result-%d" % attempt)
            start = time.time()
            rc, out, err = harness.cli("north", ["fetch", job, "--out", result],
                                       timeout=900)
            fetched = time.time() - start
            if rc != 0:
                print("fetch failed: %s %s" % (out, err))
                return 1
            same = filecmp.dircmp(inputs, os.path.join(result, "data"))
            if same.diff_files or same.left_only or same.right_only:
                print("the fetched files differ from the inputs")
                failed = True
            uploads.append(uploaded)
            fetches.append(fetched)
            print("%d MiB: upload+submit %.2f s (%.1f MiB/s), fetch %.2f s "
                  "(%.1f MiB/s)" % (args.mib, uploaded, args.mib / uploaded,
                                    fetched, args.mib / fetched), flush=True)
            shutil.rmtree(result, ignore_errors=True)
        print("median of %d: upload %.1f MiB/s, fetch %.1f MiB/s "
              "(north -> west relay; west site -> west -> north)" % (
                  args.runs, args.mib / statistics.median(uploads),
                  args.mib / statistics.median(fetches)))
    finally:
        harness.stop_all.set()
        harness.stop_submitting.set()
        harness.stop_everything()
        harness.reap_groups()
    if not failed:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
