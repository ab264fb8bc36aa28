// computenet-provider: the reference site agent, built only on the public
// provider SDK. It registers the site described by its config file with the
// home broker and runs placements as local child processes.
//
//   computenet-provider --config site.toml [--log-level info]
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

#include "computenet/common/logging.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/process_executor.h"
#include "computenet/provider/site_config.h"

namespace {

std::atomic<computenet::provider::ProviderAgent*> g_agent{nullptr};

void OnSignal(int) {
  if (auto* agent = g_agent.load()) agent->Shutdown();
}

int Fail(const computenet::Status& status) {
  std::cerr << "computenet-provider: " << status.ToString() << "\n";
  return status.code() == computenet::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"computenet-provider: ComputeNet site agent"};
  std::string config_path;
  std::string log_level = "info";
  app.add_option("--config", config_path, "site config (TOML)")->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  CLI11_PARSE(app, argc, argv);

  auto config = computenet::provider::LoadSiteConfig(config_path);
  if (!config.ok()) return Fail(config.status());
  computenet::InitLogging("provider:" + config->registration.site(), log_level);
  auto identity = computenet::Identity::Load(config->identity_dir);
  if (!identity.ok()) return Fail(identity.status());

  computenet::provider::ProcessExecutorOptions executor_options;
  executor_options.work_dir = config->work_dir;
  auto executor = std::make_unique<computenet::provider::ProcessExecutor>(
      std::move(executor_options));

  computenet::provider::ProviderOptions options;
  options.broker_endpoint = config->broker_endpoint;
  options.broker_public_key = config->broker_public_key;
  options.registration = config->registration;
  options.usage_interval_s = config->usage_interval_s;
  auto agent = computenet::provider::ProviderAgent::Create(
      std::move(options), std::move(*identity), std::move(executor));
  if (!agent.ok()) return Fail(agent.status());
  g_agent.store(agent->get());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  computenet::Status result = (*agent)->Run();
  g_agent.store(nullptr);
  if (!result.ok()) return Fail(result);
  return 0;
}
