// Job rules: what a valid job spec and a valid provider registration look
// like (the state helpers shared with the CLI and SDKs are in
// common/job_state.h; the transitions in jobs/job_manager.h).
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_BROKER_JOBS_JOB_RULES_H_
#define COMPUTENET_BROKER_JOBS_JOB_RULES_H_

#include <cstdint>
#include <string>

#include "core/imports.h"
#include "computenet/common/job_state.h"
#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::broker {

inline constexpr size_t kMaxCommandArgs = 256;
inline constexpr size_t kMaxArgBytes = 4096;
inline constexpr size_t kMaxEnvEntries = 128;
// A whole spec, serialized (command, env, name, constraints): what leaves
// room under the 1 MiB frame limit for the largest placement (4096 nodes'
// assignments) in any offer, reply or event that carries the job.
inline constexpr size_t kMaxJobSpecBytes = 128 * 1024;
inline constexpr uint32_t kMaxCardsPerNode = 64;
inline constexpr uint32_t kMaxNodes = 4096;
inline constexpr uint32_t kMaxDurationSeconds = 366 * 24 * 3600;
inline constexpr int64_t kMaxPricePerCardHour = 1'000'000'000;
inline constexpr size_t kMaxProviderNodes = 20000;
inline constexpr uint32_t kMaxA100EquivalentsMilli = 100'000'000;  // 100,000
inline constexpr uint32_t kMaxAttempts = 100;
// Registration limits, far above any real machine, so that every sum the
// broker forms over a registration (cards, CPU milli-cores, MiB, GFLOPS)
// stays well inside 64 bits (and per node inside 32 where it is stored so).
inline constexpr uint32_t kMaxNodeCpuCores = 65'536;
inline constexpr uint64_t kMaxNodeMemoryMib = uint64_t{1} << 32;  // 4 PiB
inline constexpr uint64_t kMaxCardMemoryMib = uint64_t{1} << 24;  // 16 TiB
inline constexpr uint64_t kMaxCardDenseGflops = 1'000'000'000;    // 1 EFLOPS

// INVALID_ARGUMENT naming the first problem (empty command, 0 cards, ...).
Status ValidateJobSpec(const v1::JobSpec& spec);
// The placement part of ValidateJobSpec: exactly one shape (whole cards,
// gpu_milli or a100_equivalents_milli) and sane constraints (regions,
// providers, classes, host resources, priority, attempts). INVALID_ARGUMENT
// naming the field.
Status ValidatePlacementRequest(const v1::JobSpec& spec);

// INVALID_ARGUMENT naming the first problem (no nodes, duplicate node
// names, a model without a price, ...).
Status ValidateRegistration(const v1::RegisterProvider& registration);

}  // namespace computenet::broker

#endif  // COMPUTENET_BROKER_JOBS_JOB_RULES_H_
