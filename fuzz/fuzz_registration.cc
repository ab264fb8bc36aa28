// Fuzzes RegisterProvider's checks as OnRegisterProvider runs them
// (ValidateRegistration, then the catalog's CheckRegistration) on a
// RegisterProvider's bytes, and what the broker does with a registration it
// accepted: the capacity index (where two counts of 2^31 once summed to 0
// and crashed the broker) and placements on it.
#include <cstddef>
#include <cstdint>

#include "broker_inputs.h"
#include "computenet/matching/accelerator_catalog.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  v1::RegisterProvider registration;
  if (!registration.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!broker::ValidateRegistration(registration).ok()) return 0;
  if (!matching::AcceleratorCatalog::BuiltIn()
           ->CheckRegistration(registration)
           .ok()) {
    return 0;
  }
  fuzz::IndexAcceptedRegistration(registration);
  return 0;
}
