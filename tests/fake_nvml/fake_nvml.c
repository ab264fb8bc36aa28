/* A fake NVML (libnvidia-ml) for tests of the provider's GPU discovery: it
 * exports the entry points DiscoverNvmlGpus loads, with nvml.h's C ABI, and
 * describes the GPUs listed in the text file named by $FAKE_NVML_CONFIG,
 * read at every nvmlInit:
 *
 *   driver 535.104.05
 *   init_error 9                 nvmlInit_v2 fails with this code
 *   gpu BUSID MEMORY_MIB UUID NAME...     e.g.
 *   gpu 00000000:07:00.0 81920 GPU-0a NVIDIA A800-SXM4-80GB
 *   nvlink GPU_INDEX LINK REMOTE_BUSID    an active link to that device
 *
 * Without $FAKE_NVML_CONFIG, nvmlInit_v2 fails as if no driver were loaded.
 * Not thread-safe (tests call it from one thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st* nvmlDevice_t;
typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;
typedef struct {
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;
typedef int nvmlEnableState_t;

enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9
};

#define MAX_GPUS 16
#define MAX_LINKS 18

struct nvmlDevice_st {
  char name[96];
  char uuid[80];
  char bus_id[32];
  unsigned int domain, bus, device;
  unsigned long long memory_mib;
  int link_active[MAX_LINKS];
  char link_remote[MAX_LINKS][32];
};

static struct nvmlDevice_st g_devices[MAX_GPUS];
static unsigned int g_count;
static char g_driver[80];
static int g_initialised;

static int parse_bus_id(const char* text, unsigned int* domain, unsigned int* bus,
                        unsigned int* device) {
  unsigned int function = 0;
  return sscanf(text, "%x:%x:%x.%x", domain, bus, device, &function) == 4;
}

static int copy_out(const char* text, char* buffer, unsigned int length) {
  if (buffer == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(buffer, text, strlen(text) + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
  const char* path = getenv("FAKE_NVML_CONFIG");
  FILE* file;
  char line[512];
  int init_error = 0;
  memset(g_devices, 0, sizeof(g_devices));
  g_count = 0;
  g_driver[0] = '\0';
  if (path == NULL || (file = fopen(path, "r")) == NULL) {
    return NVML_ERROR_DRIVER_NOT_LOADED;
  }
  while (fgets(line, sizeof(line), file) != NULL) {
    char word[32];
    int used = 0;
    line[strcspn(line, "\r\n")] = '\0';
    if (sscanf(line, "%31s %n", word, &used) < 1) continue;
    if (strcmp(word, "driver") == 0) {
      snprintf(g_driver, sizeof(g_driver), "%s", line + used);
    } else if (strcmp(word, "init_error") == 0) {
      init_error = atoi(line + used);
    } else if (strcmp(word, "gpu") == 0 && g_count < MAX_GPUS) {
      struct nvmlDevice_st* gpu = &g_devices[g_count];
      int name_at = 0;
      if (sscanf(line + used, "%31s %llu %79s %n", gpu->bus_id, &gpu->memory_mib,
                 gpu->uuid, &name_at) < 3 ||
          !parse_bus_id(gpu->bus_id, &gpu->domain, &gpu->bus, &gpu->device)) {
        continue;
      }
      snprintf(gpu->name, sizeof(gpu->name), "%s", line + used + name_at);
      ++g_count;
    } else if (strcmp(word, "nvlink") == 0) {
      unsigned int index = 0;
      unsigned int link = 0;
      char remote[32];
      if (sscanf(line + used, "%u %u %31s", &index, &link, remote) == 3 &&
          index < MAX_GPUS && link < MAX_LINKS) {
        g_devices[index].link_active[link] = 1;
        snprintf(g_devices[index].link_remote[link], 32, "%s", remote);
      }
    }
  }
  fclose(file);
  if (init_error != 0) return init_error;
  g_initialised = 1;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  g_initialised = 0;
  return NVML_SUCCESS;
}

const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    default: return "Unknown Error";
  }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  return copy_out(g_driver, version, length);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  *count = g_count;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  if (index >= g_count || device == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &g_devices[index];
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  return copy_out(device->name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  return copy_out(device->uuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  memory->total = device->memory_mib * 1024ULL * 1024ULL;
  memory->used = 0;
  memory->free = memory->total;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  memset(pci, 0, sizeof(*pci));
  pci->domain = device->domain;
  pci->bus = device->bus;
  pci->device = device->device;
  snprintf(pci->busId, sizeof(pci->busId), "%s", device->bus_id);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                      nvmlEnableState_t* active) {
  int any = 0;
  unsigned int i;
  if (link >= MAX_LINKS) return NVML_ERROR_INVALID_ARGUMENT;
  for (i = 0; i < MAX_LINKS; ++i) any |= device->link_active[i];
  if (!any) return NVML_ERROR_NOT_SUPPORTED;  /* a card without NVLink */
  *active = device->link_active[link];
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device, unsigned int link,
                                                 nvmlPciInfo_t* pci) {
  if (link >= MAX_LINKS || !device->link_active[link]) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  memset(pci, 0, sizeof(*pci));
  if (!parse_bus_id(device->link_remote[link], &pci->domain, &pci->bus, &pci->device)) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  snprintf(pci->busId, sizeof(pci->busId), "%s", device->link_remote[link]);
  return NVML_SUCCESS;
}
