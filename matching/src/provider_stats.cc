#include "computenet/matching/provider_stats.h"

namespace computenet::matching {

// Wide intermediates keep products of prices and FLOPS exact.
__extension__ using Uint128 = unsigned __int128;

uint32_t ReliabilityPermille(const ProviderStats& stats) {
  const Uint128 good = static_cast<Uint128>(stats.completed) + 1;
  const Uint128 all = static_cast<Uint128>(stats.completed) +
                                stats.provider_failures +
                                stats.heartbeat_losses + 2;
  return static_cast<uint32_t>(good * 1000 / all);
}

ProviderStats WithEvent(ProviderStats stats, ProviderEvent event) {
  switch (event) {
    case ProviderEvent::kCompleted: ++stats.completed; break;
    case ProviderEvent::kProviderFailure: ++stats.provider_failures; break;
    case ProviderEvent::kHeartbeatLoss: ++stats.heartbeat_losses; break;
  }
  return stats;
}

}  // namespace computenet::matching
