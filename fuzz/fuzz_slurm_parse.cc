// Fuzzes the parsers of Slurm's command output (provider-sdk/slurm_parse.h)
// that the Slurm executor and inventory read: sbatch --parsable, scontrol
// show job|node, squeue and sacct rows, times, exit codes, states, GRES
// lists and the job tags the agent finds its jobs by. The input is the
// output text; each parser gets all of it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "computenet/provider/slurm_parse.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet::provider;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ParseSbatchParsable(text);
  for (const auto& record : ParseScontrolRecords(text)) {
    (void)record.Get("JobId");
    (void)record.GetAll("Gres");
    (void)ParseSlurmTime(record.Get("StartTime"));
    (void)ParseSlurmExitCode(record.Get("ExitCode"));
    (void)MapSlurmOutcome(record.Get("JobState"), record.Get("Reason"),
                          ParseSlurmExitCode(record.Get("ExitCode")));
    (void)CountGres(record.Get("Gres"), "gpu");
    (void)CountTresGres(record.Get("CfgTRES"), "gpu");
  }
  for (const auto& row : ParseSqueue(text)) (void)DecodeJobTag(row.comment);
  (void)ParseSacct(text);
  (void)ParseSlurmTime(text);
  (void)ParseSlurmExitCode(text);
  (void)IsTerminal(ParseSlurmState(text));
  (void)ParseGresList(text);
  if (auto tag = DecodeJobTag(text)) {
    // A tag the agent reads back must be one it could have written.
    if (DecodeJobTag(EncodeJobTag(*tag)).has_value() == false) __builtin_trap();
  }
  return 0;
}
