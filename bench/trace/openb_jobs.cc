#include "openb_jobs.h"

#include <algorithm>
#include <sstream>
#include <string>

namespace computenet::bench {
namespace {

constexpr int64_t kUniformPrice = 100;
constexpr uint64_t kUniformGflops = 312'000;  // an A100's dense BF16

}  // namespace

std::vector<v1::RegisterProvider> OpenbProviders(const std::vector<OpenbNode>& nodes,
                                                 int providers, OpenbPricing pricing) {
  std::vector<v1::RegisterProvider> out(static_cast<size_t>(std::max(1, providers)));
  for (size_t p = 0; p < out.size(); ++p) {
    auto& registration = out[p];
    registration.set_site("openb-" + std::to_string(p));
    registration.set_region("trace");
    registration.set_currency("CNY");
    for (const auto& [model, info] : TraceModels()) {
      auto* price = registration.add_prices();
      price->set_model(model);
      price->set_per_card_hour(pricing == OpenbPricing::kUniform
                                   ? kUniformPrice
                                   : info.price + 10 * static_cast<int64_t>(p));
    }
  }
  size_t dealt = 0;
  for (const auto& row : nodes) {
    if (row.gpus == 0) continue;
    auto& registration = out[dealt++ % out.size()];
    v1::Node* node = registration.add_nodes();
    node->set_name(row.name);
    node->set_cpu_cores(static_cast<uint32_t>(row.cpu_milli / 1000));
    node->set_memory_mib(row.memory_mib);
    auto* card = node->add_accelerators();
    card->set_model(row.model);
    card->set_count(row.gpus);
    auto info = TraceModels().find(row.model);
    if (info != TraceModels().end()) card->set_memory_mib(info->second.memory_mib);
    const uint64_t supplied =
        pricing == OpenbPricing::kUniform
            ? kUniformGflops
            : (info != TraceModels().end() ? info->second.supplied_gflops : 0);
    if (supplied > 0) {
      card->set_measured_dense_gflops(supplied);
      card->set_vendor_class("nvidia");
      card->set_vendor("anonymized in the trace");
    }
  }
  return out;
}

v1::JobSpec OpenbSpec(const OpenbPod& pod, int64_t stretch, uint32_t max_duration_s) {
  v1::JobSpec spec;
  spec.add_command("replay");
  const uint32_t cards = std::max<uint32_t>(1, pod.num_gpu);
  if (pod.num_gpu == 1 && pod.gpu_milli > 0 && pod.gpu_milli < 1000) {
    spec.set_gpu_milli(pod.gpu_milli);
    spec.set_cards_per_node(1);
  } else {
    spec.set_cards_per_node(cards);
  }
  spec.set_nodes(1);
  spec.set_cpu_milli_per_card(static_cast<uint32_t>(pod.cpu_milli / cards));
  spec.set_host_memory_mib_per_card(pod.memory_mib / cards);
  std::stringstream models(pod.gpu_spec);
  std::string model;
  while (std::getline(models, model, '|')) {
    if (!model.empty()) spec.add_accelerator_models(model);
  }
  if (pod.qos == "Guaranteed") {
    spec.set_priority(v1::PRIORITY_CLASS_HIGH);
  } else if (pod.qos == "BE") {
    spec.set_priority(v1::PRIORITY_CLASS_LOW);
    spec.set_preemptible(true);
  } else {
    spec.set_priority(v1::PRIORITY_CLASS_NORMAL);
  }
  const int64_t duration =
      std::max<int64_t>(1, (pod.deletion_s - pod.creation_s) * std::max<int64_t>(1, stretch));
  spec.set_max_duration_s(
      static_cast<uint32_t>(std::min<int64_t>(duration, max_duration_s)));
  return spec;
}

}  // namespace computenet::bench
