// Building blocks measured in the same run as the load, so the load
// generator can report each figure as a ratio to what the machine can do
// right now: durable SQLite commits (WAL, synchronous=FULL; 1,000 rows per
// transaction and one row per transaction) and Ed25519 verification through
// common's VerifyingKey (one thread = one core).
//
// Thread safety: stateless functions.
#ifndef COMPUTENET_BENCH_LOADGEN_BUILDING_BLOCKS_H_
#define COMPUTENET_BENCH_LOADGEN_BUILDING_BLOCKS_H_

#include <string>

namespace computenet::loadgen {

struct BuildingBlocks {
  double sqlite_batched_rows_per_s = 0;    // 1,000 rows per FULL commit
  double sqlite_single_commits_per_s = 0;  // 1 row per FULL commit
  double ed25519_verify_per_s = 0;         // one core
  double ed25519_sign_per_s = 0;           // one core
};

// Spends about `seconds` on each figure; scratch files go under dir.
BuildingBlocks MeasureBuildingBlocks(const std::string& dir, double seconds);

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_BUILDING_BLOCKS_H_
