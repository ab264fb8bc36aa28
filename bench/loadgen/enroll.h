// Bulk enrolment for the load generator: admits thousands of parties' keys
// and tops up consumers directly in the broker's SQLite file before the
// broker starts (spawning `computenet-broker enroll` once per party is far
// too slow for 10,000 providers).
//
// enroll.cc is the only file of the load generator that uses the broker's
// internal headers (Store, Ledger); everything else talks to the broker
// over the wire. When those headers move, only that file changes.
//
// Thread safety: call from one thread, while no broker has the file open.
#ifndef COMPUTENET_BENCH_LOADGEN_ENROLL_H_
#define COMPUTENET_BENCH_LOADGEN_ENROLL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/identity.h"
#include "computenet/common/status.h"

namespace computenet::loadgen {

struct EnrollmentPlan {
  std::vector<PublicIdentity> providers;
  // Each is topped up with topup_per_consumer minor units.
  std::vector<PublicIdentity> consumers;
  // Enrolled with no money: their jobs wait for funds (stay QUEUED).
  std::vector<PublicIdentity> unfunded_consumers;
  int64_t topup_per_consumer = 0;
};

// Creates (or opens) the broker database at db_path, enrolls every party in
// one transaction and posts one top-up ledger entry per funded consumer.
Status EnrollAll(const std::string& db_path, const EnrollmentPlan& plan,
                 int64_t now_ms);

}  // namespace computenet::loadgen

#endif  // COMPUTENET_BENCH_LOADGEN_ENROLL_H_
