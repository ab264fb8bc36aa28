// Fuzzes the broker's config file loader (broker/src/core/broker_config.cc,
// LoadBrokerConfig): the input is the TOML file, written into a scratch
// directory that holds identity files for peers "hub-east" and "hub-west"
// (keys/<peer>/identity.pub), as the corpus's configs name them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "computenet/broker/broker_config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (fuzz::NamesSpecialFiles(text)) return 0;
  const std::string path = fuzz::ScratchDir() + "/broker.toml";
  if (!fuzz::WriteScratchFile(path, text, 0644)) __builtin_trap();
  auto config = broker::LoadBrokerConfig(path);
  if (config.ok()) {
    // What the loader promises about what it accepted.
    const auto& options = config->options;
    if (options.heartbeat_interval_ms < 10 || options.heartbeat_liveness < 1 ||
        options.fee_bps > 10'000 || options.checkpoint_every_entries < 1) {
      __builtin_trap();
    }
  }
  return 0;
}
