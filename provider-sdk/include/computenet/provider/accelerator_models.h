// Accelerator model names: maps what a vendor tool or scheduler calls a card
// (NVML's "NVIDIA A800-SXM4-80GB", "Tesla V100-SXM2-32GB"; a Slurm GRES
// type "a800") to the catalog model name that ComputeNet prices and matches
// by ("A800", "V100"). A name that matches no known model is kept raw and
// flagged unverified, so an operator sees it instead of a wrong guess.
//
// Thread safety: stateless; safe from any thread.
#ifndef COMPUTENET_PROVIDER_ACCELERATOR_MODELS_H_
#define COMPUTENET_PROVIDER_ACCELERATOR_MODELS_H_

#include <string>
#include <string_view>
#include <vector>

namespace computenet::provider {

struct CatalogModel {
  std::string model;  // catalog name, or the trimmed raw name if unknown
  bool verified = false;
};

// The catalog models recognised: A100 A800 A10 H100 H800 H20 L40S L20 T4
// V100 P100.
const std::vector<std::string>& KnownAcceleratorModels();

// Splits the name into alphanumeric words and returns the first word that
// is a known model (case-insensitive), so "A100" is never read as "A10" and
// "H200" never as "H20". Unknown: {trimmed raw name, verified = false}.
CatalogModel CatalogModelFromDeviceName(std::string_view device_name);

}  // namespace computenet::provider

#endif  // COMPUTENET_PROVIDER_ACCELERATOR_MODELS_H_
