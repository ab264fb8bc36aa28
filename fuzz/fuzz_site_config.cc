// Fuzzes the provider site config (provider-sdk/site_config.h,
// ParseSiteConfig) as `computenet-provider --config` reads it; relative
// paths resolve in a scratch directory with a broker.pub and
// keys/hub/identity.pub. A config it accepted is compared with itself and
// with the sample of the corpus the way a SIGHUP reload compares them
// (OfferChanges).
#include <cstddef>
#include <cstdint>
#include <string>

#include "computenet/provider/site_config.h"
#include "computenet/provider/slurm_parse.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (fuzz::NamesSpecialFiles(text)) return 0;
  auto config = provider::ParseSiteConfig(text, fuzz::ScratchDir());
  if (!config.ok()) return 0;
  auto same =
      provider::OfferChanges(config->registration, config->registration);
  if (!same.ok() || same->prices_size() != 0 || same->nodes_size() != 0) {
    __builtin_trap();  // a registration differs from itself
  }
  return 0;
}
