// A minimal program on the provider SDK: reads a site config the way
// computenet-provider does, resolves its inventory (the [[nodes]] given,
// NVML discovery or Slurm's nodes) and prints what the site would register,
// without connecting to a broker. A site operator runs it before starting
// the agent; a site that writes its own agent starts from these calls plus
// ProviderAgent::Create (computenet/provider/agent.h).
//
//   check_site SITE_CONFIG.toml
#include <cstdio>
#include <string>

#include "computenet/provider/site_config.h"
#include "computenet/provider/site_wiring.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SITE_CONFIG.toml\n", argv[0]);
    return 2;
  }
  auto config = computenet::provider::LoadSiteConfig(argv[1]);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 1;
  }
  auto inventory = computenet::provider::ResolveSiteInventory(&*config);
  if (!inventory.ok()) {
    std::fprintf(stderr, "%s\n", inventory.status().ToString().c_str());
    return 1;
  }
  const auto& registration = config->registration;
  std::printf("site %s in %s: %s\n", registration.site().c_str(),
              registration.region().c_str(), inventory->c_str());
  for (const auto& node : registration.nodes()) {
    uint64_t cards = 0;
    for (const auto& accelerator : node.accelerators()) {
      cards += accelerator.count();
    }
    std::printf("  node %s: %llu card(s), %u CPU cores\n", node.name().c_str(),
                static_cast<unsigned long long>(cards), node.cpu_cores());
  }
  return 0;
}
