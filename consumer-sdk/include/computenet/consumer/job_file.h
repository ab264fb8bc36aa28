// Job files: a job described in TOML, for `computenet submit -f job.toml`
// and for programs that keep their jobs in files. Every request form a
// JobSpec holds can be written, with the same names the CLI's flags use:
//
//   name = "finetune-7b"
//   command = ["python3", "train.py", "--epochs", "3"]
//   max_duration_s = 7200
//   # what to run on (docs/matching.md): whole cards ...
//   models = ["A800", "H800"]      # or "A800|H800"; any of
//   cards = 8                      # cards per node
//   nodes = 2                      # a gang inside one fabric
//   # ... or a share of one card: gpu_milli = 500
//   # ... or compute equivalence: a100_equivalents = "2.5" (or 8)
//   min_memory_mib = 81920
//   vendor_classes = ["domestic"]
//   cpu_milli_per_card = 8000
//   host_memory_mib_per_card = 65536
//   regions = ["north"]            # data residency (strict)
//   prefer_regions = ["east"]
//   exclude_providers = ["site-x"]
//   max_price = 3000               # minor units per card-hour (0: none)
//   max_price_per_a100_hour = 2500
//   preemptible = false
//   priority = "normal"            # low | normal | high
//   max_attempts = 3
//   network_access = false
//   idempotency_key = "finetune-7b-run-1"
//   [env]
//   HF_HOME = "/scratch/hf"
//   [secret_env]                   # set in the job's environment only;
//   WANDB_API_KEY = "..."          # status shows the names, as "***"
//   [secret_env_files]             # the value read from a file (mode 0600;
//   HF_TOKEN = "hf_token.txt"      # relative to the job file's directory)
//
// Unknown keys, wrong types, out-of-range numbers and NUL bytes are
// INVALID_ARGUMENT naming the file, the key and its line. Numbers are
// integers (a100_equivalents may also be a decimal string): nothing here
// goes through floating point. The broker validates the spec again.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_CONSUMER_JOB_FILE_H_
#define COMPUTENET_CONSUMER_JOB_FILE_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"

namespace computenet::consumer {

struct JobFile {
  v1::JobSpec spec;
  std::string idempotency_key;  // empty: none
  // `inputs = ["data", "train.py"]`: files and directories to upload with
  // the job (Client::UploadInputs), relative to the file's directory when
  // loaded with LoadJobFile (as written for ParseJobFile).
  std::vector<std::string> inputs;
  // The keys the file set (e.g. "cards", "env"), so that a caller merging
  // flags on top knows what the file chose.
  std::set<std::string> keys;
  // [secret_env_files]: NAME -> path as written. LoadJobFile reads them
  // into spec.secret_env (ReadSecretValueFile); ParseJobFile leaves them.
  std::map<std::string, std::string> secret_env_files;
};

// Parses a job file's text; `file_name` only names it in errors.
StatusOr<JobFile> ParseJobFile(const std::string& toml_text,
                               const std::string& file_name);
// Reads and parses a file (at most 1 MiB), then reads its
// secret_env_files (relative paths from the file's directory). NOT_FOUND if
// it cannot be read; a secret file's error (request_forms.h) names its key.
StatusOr<JobFile> LoadJobFile(const std::string& path);

}  // namespace computenet::consumer

#endif  // COMPUTENET_CONSUMER_JOB_FILE_H_
