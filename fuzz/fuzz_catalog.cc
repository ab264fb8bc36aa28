// Fuzzes the accelerator catalog (matching/accelerator_catalog.h,
// AcceleratorCatalog::Parse) as `computenet-broker run` loads an operator's
// accelerators.toml, then uses a catalog it accepted the way the broker
// does: resolving registrations' accelerators and indexing a site on it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "broker_inputs.h"
#include "computenet/matching/accelerator_catalog.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  computenet::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace computenet;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto parsed = matching::AcceleratorCatalog::Parse(text, "fuzz.toml");
  if (!parsed.ok()) return 0;
  auto catalog =
      std::make_shared<const matching::AcceleratorCatalog>(std::move(*parsed));
  (void)catalog->reference_gflops();
  for (const auto& spec : catalog->entries()) {
    if (catalog->Find(spec.model) == nullptr) __builtin_trap();
    (void)catalog->A100MilliOf(spec.dense_gflops);
  }
  v1::RegisterProvider registration = fuzz::SampleRegistration();
  v1::Accelerator unknown;
  unknown.set_model("A800");
  unknown.set_count(1);
  unknown.set_measured_dense_gflops(250'000);
  (void)catalog->Resolve(unknown);
  if (!catalog->CheckRegistration(registration).ok()) return 0;
  matching::CapacityIndex capacity(catalog);
  if (!capacity.UpsertProvider("site-a", registration).ok()) return 0;
  capacity.SetOnline("site-a", true);
  v1::JobSpec spec;
  spec.add_command("true");
  spec.set_a100_equivalents_milli(8000);
  spec.set_max_duration_s(60);
  fuzz::PlaceAcceptedSpec(spec, capacity);
  return 0;
}
