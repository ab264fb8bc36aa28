#include "computenet/provider/slurm_command.h"

namespace computenet::provider {

StatusOr<SubprocessResult> RunSlurmCommand(const SlurmCommandOptions& options,
                                           const std::string& command,
                                           const std::vector<std::string>& args) {
  SubprocessOptions run;
  run.argv.push_back(options.bin_dir.empty() ? command
                                             : options.bin_dir + "/" + command);
  run.argv.insert(run.argv.end(), args.begin(), args.end());
  run.env["SLURM_TIME_FORMAT"] = "%s";
  if (!options.slurm_conf.empty()) run.env["SLURM_CONF"] = options.slurm_conf;
  run.timeout_ms = options.timeout_ms;
  return RunSubprocess(run);
}

}  // namespace computenet::provider
