#include "computenet/provider/nvml_inventory.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "computenet/provider/accelerator_models.h"

namespace computenet::provider {
namespace {

// The slice of nvml.h this file needs, with the same C ABI.
using nvmlReturn_t = int;  // an enum in nvml.h: int-sized
constexpr nvmlReturn_t NVML_SUCCESS = 0;
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;
struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct nvmlPciInfo_t {
  char busIdLegacy[16];  // NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];  // NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE
};
using nvmlEnableState_t = int;  // NVML_FEATURE_DISABLED = 0, ENABLED = 1
constexpr unsigned int kNvLinkMaxLinks = 18;  // NVML_NVLINK_MAX_LINKS
constexpr unsigned int kNameSize = 96;        // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned int kUuidSize = 80;        // NVML_DEVICE_UUID_V2_BUFFER_SIZE
constexpr unsigned int kVersionSize = 80;     // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE

using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using GetCountFn = nvmlReturn_t (*)(unsigned int*);
using GetHandleFn = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using GetStringFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
using GetMemoryFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*);
using GetPciFn = nvmlReturn_t (*)(nvmlDevice_t, nvmlPciInfo_t*);
using GetLinkStateFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int,
                                        nvmlEnableState_t*);
using GetLinkPciFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int, nvmlPciInfo_t*);
using DriverVersionFn = nvmlReturn_t (*)(char*, unsigned int);
using ErrorStringFn = const char* (*)(nvmlReturn_t);

class Library {
 public:
  explicit Library(const std::string& path)
      : handle_(::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {}
  ~Library() {
    if (handle_ != nullptr) ::dlclose(handle_);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  bool loaded() const { return handle_ != nullptr; }

  // The first of the names the library exports, or null.
  template <typename Fn>
  Fn Find(std::initializer_list<const char*> names) const {
    for (const char* name : names) {
      if (void* symbol = ::dlsym(handle_, name)) {
        return reinterpret_cast<Fn>(symbol);
      }
    }
    return nullptr;
  }

 private:
  void* handle_;
};

std::string Text(const char* buffer, size_t size) {
  return std::string(buffer, strnlen(buffer, size));
}

// PCI location without formatting differences between busId forms.
struct PciKey {
  unsigned int domain, bus, device;
  bool operator==(const PciKey&) const = default;
};

}  // namespace

StatusOr<NvmlInventory> DiscoverNvmlGpus(const NvmlOptions& options) {
  auto unavailable = [&](const std::string& why) {
    spdlog::warn("NVML GPU discovery unavailable ({}): {}", options.library_path,
                 why);
    return UnavailableError("NVML: " + why);
  };
  Library library(options.library_path);
  if (!library.loaded()) {
    const char* error = ::dlerror();
    return unavailable(std::string("cannot load the library: ") +
                       (error != nullptr ? error : "unknown error") +
                       " (no NVIDIA driver installed?)");
  }
  auto init = library.Find<InitFn>({"nvmlInit_v2", "nvmlInit"});
  auto shutdown = library.Find<ShutdownFn>({"nvmlShutdown"});
  auto get_count = library.Find<GetCountFn>({"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"});
  auto get_handle = library.Find<GetHandleFn>(
      {"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"});
  auto get_name = library.Find<GetStringFn>({"nvmlDeviceGetName"});
  auto get_uuid = library.Find<GetStringFn>({"nvmlDeviceGetUUID"});
  auto get_memory = library.Find<GetMemoryFn>({"nvmlDeviceGetMemoryInfo"});
  auto get_pci = library.Find<GetPciFn>({"nvmlDeviceGetPciInfo_v3"});
  auto link_state = library.Find<GetLinkStateFn>({"nvmlDeviceGetNvLinkState"});
  auto link_pci = library.Find<GetLinkPciFn>(
      {"nvmlDeviceGetNvLinkRemotePciInfo_v2"});
  auto driver_version = library.Find<DriverVersionFn>({"nvmlSystemGetDriverVersion"});
  auto error_string = library.Find<ErrorStringFn>({"nvmlErrorString"});
  if (!init || !shutdown || !get_count || !get_handle || !get_name ||
      !get_uuid || !get_memory) {
    return unavailable("the library lacks required NVML entry points");
  }
  auto describe = [&](nvmlReturn_t code) {
    std::string text = "NVML error " + std::to_string(code);
    if (error_string) {
      if (const char* message = error_string(code)) text += " (" + std::string(message) + ")";
    }
    return text;
  };
  nvmlReturn_t initialised = init();
  if (initialised != NVML_SUCCESS) {
    return unavailable("nvmlInit failed: " + describe(initialised));
  }
  // From here on every path shuts NVML down again.
  struct Shutdown {
    ShutdownFn fn;
    ~Shutdown() { fn(); }
  } shutdown_guard{shutdown};

  NvmlInventory inventory;
  if (driver_version) {
    char version[kVersionSize] = {};
    if (driver_version(version, kVersionSize) == NVML_SUCCESS) {
      inventory.driver_version = Text(version, kVersionSize);
    }
  }
  unsigned int count = 0;
  nvmlReturn_t code = get_count(&count);
  if (code != NVML_SUCCESS) {
    return InternalError("NVML: cannot count GPUs: " + describe(code));
  }
  std::vector<nvmlDevice_t> handles(count, nullptr);
  std::vector<std::optional<PciKey>> pci_keys(count);
  for (unsigned int index = 0; index < count; ++index) {
    code = get_handle(index, &handles[index]);
    if (code != NVML_SUCCESS) {
      return InternalError("NVML: no handle for GPU " + std::to_string(index) +
                           ": " + describe(code));
    }
    GpuDevice gpu;
    gpu.index = index;
    char name[kNameSize] = {};
    code = get_name(handles[index], name, kNameSize);
    if (code != NVML_SUCCESS) {
      return InternalError("NVML: no name for GPU " + std::to_string(index) +
                           ": " + describe(code));
    }
    gpu.name = Text(name, kNameSize);
    CatalogModel model = CatalogModelFromDeviceName(gpu.name);
    gpu.model = model.model;
    gpu.model_verified = model.verified;
    char uuid[kUuidSize] = {};
    if (get_uuid(handles[index], uuid, kUuidSize) == NVML_SUCCESS) {
      gpu.uuid = Text(uuid, kUuidSize);
    }
    nvmlMemory_t memory{};
    code = get_memory(handles[index], &memory);
    if (code != NVML_SUCCESS) {
      return InternalError("NVML: no memory size for GPU " +
                           std::to_string(index) + ": " + describe(code));
    }
    gpu.memory_mib = memory.total / (1024 * 1024);
    if (get_pci) {
      nvmlPciInfo_t pci{};
      if (get_pci(handles[index], &pci) == NVML_SUCCESS) {
        gpu.pci_bus_id = Text(pci.busId, sizeof(pci.busId));
        pci_keys[index] = PciKey{pci.domain, pci.bus, pci.device};
      }
    }
    inventory.gpus.push_back(std::move(gpu));
  }
  // NVLink: a link whose far end is one of our GPUs makes a peer; one that
  // ends elsewhere goes to an NVSwitch.
  if (link_state && link_pci) {
    for (unsigned int index = 0; index < count; ++index) {
      GpuDevice& gpu = inventory.gpus[index];
      std::set<uint32_t> peers;
      for (unsigned int link = 0; link < kNvLinkMaxLinks; ++link) {
        nvmlEnableState_t active = 0;
        // NOT_SUPPORTED (no NVLink) or INVALID_ARGUMENT (past the last
        // link) just mean "no link here".
        if (link_state(handles[index], link, &active) != NVML_SUCCESS ||
            active == 0) {
          continue;
        }
        ++gpu.active_nvlinks;
        nvmlPciInfo_t remote{};
        if (link_pci(handles[index], link, &remote) != NVML_SUCCESS) continue;
        const PciKey key{remote.domain, remote.bus, remote.device};
        bool is_gpu = false;
        for (unsigned int other = 0; other < count; ++other) {
          if (other != index && pci_keys[other] && *pci_keys[other] == key) {
            peers.insert(other);
            is_gpu = true;
          }
        }
        if (!is_gpu) ++gpu.nvswitch_links;
      }
      gpu.nvlink_peers.assign(peers.begin(), peers.end());
    }
  }
  spdlog::info("NVML: {} GPU(s), driver {}", inventory.gpus.size(),
               inventory.driver_version.empty() ? "unknown"
                                                : inventory.driver_version);
  return inventory;
}

v1::Node NodeFromGpus(const std::string& node_name, const std::string& fabric_id,
                      const NvmlInventory& inventory) {
  v1::Node node;
  node.set_name(node_name);
  node.set_fabric_id(fabric_id);
  v1::Accelerator* run = nullptr;
  for (const auto& gpu : inventory.gpus) {
    if (run == nullptr || run->model() != gpu.model ||
        run->memory_mib() != gpu.memory_mib) {
      run = node.add_accelerators();
      run->set_model(gpu.model);
      run->set_memory_mib(gpu.memory_mib);
    }
    run->set_count(run->count() + 1);
  }
  return node;
}

}  // namespace computenet::provider
