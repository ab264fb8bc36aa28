// Reading the Alibaba cluster-trace-gpu-v2023 CSV files (bench/data/) and the
// figures the trace leaves out (per-card memory, list prices, and compute
// for the anonymized G2/G3 models), shared by trace_replay and loadgen.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_BENCH_TRACE_ALIBABA_TRACE_H_
#define COMPUTENET_BENCH_TRACE_ALIBABA_TRACE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "computenet/common/status.h"

namespace computenet::bench {

// One CSV row, by column name (missing trailing fields are empty).
using TraceRow = std::map<std::string, std::string>;

// The rows of a comma-separated file with a header line. NOT_FOUND if it
// cannot be opened.
StatusOr<std::vector<TraceRow>> ReadTraceCsv(const std::string& path);

// A decimal field; 0 when empty.
uint64_t TraceNumber(const std::string& text);

// Per-card memory and list prices (minor units per card-hour) of the
// trace's models. G2 and G3 are anonymized in the trace: not in the catalog,
// so the provider supplies figures (flagged unverified by the broker).
struct TraceModel {
  uint64_t memory_mib = 0;
  int64_t price = 0;
  uint64_t supplied_gflops = 0;  // only for models the catalog lacks
};
const std::map<std::string, TraceModel>& TraceModels();

}  // namespace computenet::bench

#endif  // COMPUTENET_BENCH_TRACE_ALIBABA_TRACE_H_
