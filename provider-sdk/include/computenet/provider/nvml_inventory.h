// NVML inventory: discovers this machine's NVIDIA GPUs through NVML, loaded
// at run time with dlopen (no build dependency on CUDA or the driver): name,
// catalog model, UUID, memory, PCI bus id and NVLink peers. On a machine
// without the library or the driver it returns UNAVAILABLE with a clear
// reason (and logs one line), never crashes, so an agent can fall back to
// its configured inventory.
//
// Only the few NVML entry points needed are declared here, with the C ABI
// of nvml.h: nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2,
// nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetName, nvmlDeviceGetUUID,
// nvmlDeviceGetMemoryInfo, nvmlSystemGetDriverVersion (optional),
// nvmlDeviceGetPciInfo_v3, nvmlDeviceGetNvLinkState and
// nvmlDeviceGetNvLinkRemotePciInfo_v2 (optional: NVLink peers are left
// empty without them), nvmlErrorString (optional).
//
// Thread safety: DiscoverNvmlGpus may be called from any thread, but NVML
// itself is process-global: do not call it concurrently with other NVML
// users in the same process.
#ifndef COMPUTENET_PROVIDER_NVML_INVENTORY_H_
#define COMPUTENET_PROVIDER_NVML_INVENTORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "computenet/common/status.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::provider {

struct NvmlOptions {
  // dlopen name or path of the NVML library. Default "libnvidia-ml.so.1"
  // (the driver's soname); tests point it at a fake.
  std::string library_path = "libnvidia-ml.so.1";
};

struct GpuDevice {
  uint32_t index = 0;        // NVML index (= CUDA's with PCI bus ordering)
  std::string name;          // as NVML reports it
  std::string model;         // catalog model, or the raw name if unknown
  bool model_verified = false;
  std::string uuid;
  uint64_t memory_mib = 0;
  std::string pci_bus_id;    // "00000000:07:00.0"; empty if unknown
  // Indices of GPUs on the other end of an active NVLink, sorted, unique.
  std::vector<uint32_t> nvlink_peers;
  // Active NVLinks that end at a non-GPU device (an NVSwitch).
  uint32_t nvswitch_links = 0;
  uint32_t active_nvlinks = 0;
};

struct NvmlInventory {
  std::string driver_version;  // empty if NVML would not say
  std::vector<GpuDevice> gpus;
};

// Loads NVML, enumerates the GPUs and unloads it again. UNAVAILABLE when
// the library cannot be loaded, lacks a required entry point, or
// nvmlInit fails (no driver, version mismatch: NVML's own error string is
// in the message); INTERNAL when a device query fails part-way.
StatusOr<NvmlInventory> DiscoverNvmlGpus(const NvmlOptions& options = {});

// One node for the registration: the GPUs as accelerators in index order,
// one entry per run of the same model and memory (the agent maps device
// indices to models by those runs). Unverified names are used as the model
// as they are; the caller should warn about them.
v1::Node NodeFromGpus(const std::string& node_name, const std::string& fabric_id,
                      const NvmlInventory& inventory);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_NVML_INVENTORY_H_
