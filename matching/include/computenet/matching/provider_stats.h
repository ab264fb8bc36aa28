// ProviderStats: a provider's track record as the broker saw it, and the
// reliability score the matcher ranks providers by (after cost).
//
//   reliability = (completed + 1) * 1000 / (completed + failures + losses + 2)
//
// in per-mille: Laplace's rule of succession, so a provider without history
// starts at 500, a long clean record approaches 1000, and one bad event does
// not wipe out a long good history. "Completed" counts jobs the provider ran
// to their end (whatever the command's exit code: a failing command is the
// consumer's); "failures" are provider-caused (offers rejected, jobs lost
// with the provider or after it reconnected); "losses" are heartbeat losses.
//
// Thread safety: plain value types and a pure function; safe anywhere.
#ifndef COMPUTENET_MATCHING_PROVIDER_STATS_H_
#define COMPUTENET_MATCHING_PROVIDER_STATS_H_

#include <cstdint>

namespace computenet::matching {

struct ProviderStats {
  uint64_t completed = 0;
  uint64_t provider_failures = 0;
  uint64_t heartbeat_losses = 0;
};

enum class ProviderEvent { kCompleted, kProviderFailure, kHeartbeatLoss };

// The formula above; never 0 and never above 999.
uint32_t ReliabilityPermille(const ProviderStats& stats);

// stats with one more event of the given kind.
ProviderStats WithEvent(ProviderStats stats, ProviderEvent event);

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_PROVIDER_STATS_H_
