// The openb trace as ComputeNet sees it: its nodes as providers' nodes and
// its pods as job specs, shared by trace_replay, the arrival protocol and
// their tests.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_BENCH_TRACE_OPENB_JOBS_H_
#define COMPUTENET_BENCH_TRACE_OPENB_JOBS_H_

#include <cstdint>
#include <vector>

#include "alibaba_trace.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::bench {

enum class OpenbPricing {
  // TraceModels() list prices (+10 per provider, so that rank matters) and
  // the catalog's compute figures: a market, where cost decides first.
  kTraceList,
  // Every card one price and one compute figure (an A100's, as measured):
  // one operator's cluster where a GPU is a GPU, as in the paper's
  // simulator, so that packing alone decides.
  kUniform,
};

// GPU nodes dealt round-robin to `providers` registrations (site openb-<p>,
// region "trace"), each node its own fabric (the trace has no fabric data).
// Nodes without GPUs are left out.
std::vector<v1::RegisterProvider> OpenbProviders(const std::vector<OpenbNode>& nodes,
                                                 int providers, OpenbPricing pricing);

// A pod as a one-node job: a share of one card, or num_gpu whole cards;
// cpu_milli and memory_mib split per card; gpu_spec limits the models; qos
// maps to priority (Guaranteed HIGH, BE LOW and preemptible, else NORMAL);
// it runs for (deletion - creation) x stretch seconds (at least 1, at most
// the broker's limit `max_duration_s`).
v1::JobSpec OpenbSpec(const OpenbPod& pod, int64_t stretch, uint32_t max_duration_s);

}  // namespace computenet::bench

#endif  // COMPUTENET_BENCH_TRACE_OPENB_JOBS_H_
