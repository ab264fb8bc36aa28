// computenet-provider: the reference site agent, built only on the public
// provider SDK. It registers the site described by its config file with the
// home broker (inventory from the config, NVML or Slurm) and runs placements
// as local child processes or as Slurm jobs (executor = "process" | "slurm").
//
//   computenet-provider --config site.toml [--log-level info]
//                       [--log-format text|json]
//
// SIGHUP re-reads the config and sends what may change at run time to the
// broker (UpdateOffer): nodes offered as spare, withdrawn (reclaimed: the
// preemptible jobs there are stopped after a grace period and requeued) or
// dedicated, and new prices (for new placements only).
//
// Exit status: 0 stopped by SIGINT/SIGTERM; 2 a configuration error
// (INVALID_ARGUMENT); 4 the broker refused this site's key at the
// handshake before it was ever registered (not enrolled, or revoked:
// UNAUTHENTICATED); 6 the handshake failed: broker_identity is not the
// broker's key, or broker_endpoint is not a ComputeNet broker
// (FAILED_PRECONDITION from the connection); 1 anything else. 4 and 6 are
// the numbers of common/exit_codes.h. An unreachable broker is no exit: the
// agent retries until it answers.
#include <CLI/CLI.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "computenet/common/exit_codes.h"
#include "computenet/common/version.h"
#include "computenet/common/logging.h"
#include "computenet/provider/agent.h"
#include "computenet/provider/site_config.h"
#include "computenet/provider/site_wiring.h"

namespace {

namespace v1 = computenet::v1;

std::atomic<computenet::provider::ProviderAgent*> g_agent{nullptr};
std::atomic<bool> g_reload{false};

void OnSignal(int) {
  if (auto* agent = g_agent.load()) agent->Shutdown();
}

void OnHangup(int) { g_reload.store(true); }

int Fail(const computenet::Status& status) {
  std::cerr << "computenet-provider: " << status.ToString() << "\n";
  return status.code() == computenet::StatusCode::kInvalidArgument ? 2 : 1;
}

// Run()'s error. Its only UNAUTHENTICATED and FAILED_PRECONDITION are the
// connection's verdicts (DealerChannel::ConnectionError), which get their
// own codes so a service manager or script can tell "fix the key" from
// other failures.
int FailRun(const computenet::Status& status) {
  if (status.code() == computenet::StatusCode::kUnauthenticated ||
      status.code() == computenet::StatusCode::kFailedPrecondition) {
    std::cerr << "computenet-provider: " << status.ToString() << "\n";
    return computenet::ExitCodeFor(status);
  }
  return Fail(status);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"computenet-provider: ComputeNet site agent"};
  std::string config_path;
  std::string log_level = "info";
  app.set_version_flag("--version",
                       computenet::VersionLine("computenet-provider"));
  app.add_option("--config", config_path, "site config (TOML)")->required();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember(computenet::LogLevelNames()));
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text (default) or json: one JSON object per line")
      ->check(CLI::IsMember(computenet::LogFormatNames()));
  CLI11_PARSE(app, argc, argv);

  auto config = computenet::provider::LoadSiteConfig(config_path);
  if (!config.ok()) return Fail(config.status());
  computenet::InitLogging("provider:" + config->registration.site(), log_level,
                          log_format);
  auto identity = computenet::Identity::Load(config->identity_dir);
  if (!identity.ok()) return Fail(identity.status());

  auto inventory = computenet::provider::ResolveSiteInventory(&*config);
  if (!inventory.ok()) return Fail(inventory.status());
  spdlog::info("inventory: {}; executor: {}", *inventory, config->executor);
  auto executor = computenet::provider::MakeSiteExecutor(*config);
  if (!executor.ok()) return Fail(executor.status());

  computenet::provider::ProviderOptions options;
  options.broker_endpoint = config->broker_endpoint;
  options.broker_public_key = config->broker_public_key;
  options.registration = config->registration;
  options.usage_interval_s = config->usage_interval_s;
  options.state_dir = config->state_dir;
  options.data = config->data;
  auto agent = computenet::provider::ProviderAgent::Create(
      std::move(options), std::move(*identity), std::move(*executor));
  if (!agent.ok()) return Fail(agent.status());
  g_agent.store(agent->get());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGHUP, OnHangup);
  // Reloads happen here, off the signal handler; the agent's Run() thread
  // sends them.
  std::atomic<bool> running{true};
  computenet::provider::ProviderAgent* raw = agent->get();
  v1::RegisterProvider current = config->registration;
  std::thread reloader([&] {
    while (running.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!g_reload.exchange(false)) continue;
      auto reloaded = computenet::provider::LoadSiteConfig(config_path);
      if (!reloaded.ok()) {
        spdlog::error("reload: {}", reloaded.status().ToString());
        continue;
      }
      auto update =
          computenet::provider::OfferChanges(current, reloaded->registration);
      if (!update.ok()) {
        spdlog::error("reload: {}", update.status().ToString());
        continue;
      }
      if (update->nodes_size() == 0 && update->prices_size() == 0) {
        spdlog::info("reload: no offer changes");
        continue;
      }
      computenet::Status queued = raw->UpdateOffer(*update);
      if (!queued.ok()) {
        spdlog::error("reload: {}", queued.ToString());
        continue;
      }
      current = reloaded->registration;
      spdlog::info("reload: sending {} node change(s), {} price(s)",
                   update->nodes_size(), update->prices_size());
    }
  });
  computenet::Status result = (*agent)->Run();
  running.store(false);
  reloader.join();
  g_agent.store(nullptr);
  if (!result.ok()) return FailRun(result);
  return 0;
}
