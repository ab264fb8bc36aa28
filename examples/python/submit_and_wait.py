#!/usr/bin/env python3
"""Submit one job, follow its state changes, print what it cost.

    export COMPUTENET_BROKER=tcp://broker:7700 \
           COMPUTENET_BROKER_IDENTITY=broker.pub COMPUTENET_IDENTITY=keys/alice
    python3 submit_and_wait.py -- sh -c 'echo hello from $CUDA_VISIBLE_DEVICES'

Settings come from Client.from_config(): the environment above, or
~/.config/computenet/config.toml. Exit status 0 if the job succeeded, 3 if
it ended otherwise, 1 on an error.
"""

import sys

import computenet


def main(argv):
    command = argv[argv.index("--") + 1:] if "--" in argv else ["true"]
    try:
        with computenet.Client.from_config() as client:
            job = client.submit(command=command, name="example", cards=1,
                                max_duration_s=600)
            print(f"submitted {job.id}")
            for info in job.events(timeout=3600):
                note = f" - {info.reason}" if info.reason else ""
                print(f"{info.job_id}: {info.state}{note}")
    except computenet.Error as e:
        print(f"computenet: {e}", file=sys.stderr)
        return 1
    print(f"exit code {info.exit_code} on {info.provider} ({info.model}); "
          f"{info.card_seconds} card-seconds, charged {info.charged} "
          f"{info.currency} minor units")
    return 0 if info.succeeded else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
