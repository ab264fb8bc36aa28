// Fuzzes SubmitJob's spec check (broker/src/jobs/job_rules.h,
// ValidateJobSpec) on a JobSpec's bytes, and what the broker does with a
// spec it accepted: the matcher's checks and placement on a sample site,
// and the promise that the event carrying the job fits a frame.
#include <cstddef>
#include <cstdint>

#include "broker_inputs.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  v1::JobSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!broker::ValidateJobSpec(spec).ok()) {
    // The placement part alone is called by the forward path too.
    (void)broker::ValidatePlacementRequest(spec);
    return 0;
  }
  fuzz::PlaceAcceptedSpec(spec, fuzz::SampleCapacity());
  return 0;
}
