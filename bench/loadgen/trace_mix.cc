// TraceMix: reading the openb trace into job specs and nodes (see
// trace_mix.h).
#include "trace_mix.h"

#include "alibaba_trace.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace computenet::loadgen {
namespace {

using bench::ReadTraceCsv;
using bench::TraceModels;
using bench::TraceNumber;

void Describe(const std::string& model, v1::Accelerator* card) {
  card->set_model(model);
  auto info = TraceModels().find(model);
  if (info == TraceModels().end()) return;
  card->set_memory_mib(info->second.memory_mib);
  if (info->second.supplied_gflops > 0) {
    card->set_measured_dense_gflops(info->second.supplied_gflops);
    card->set_vendor_class("nvidia");
    card->set_vendor("anonymized in the trace");
  }
}

}  // namespace

std::string DefaultTracePath() {
  const std::string source = COMPUTENET_SOURCE_DIR;
  const std::string in_repo =
      source + "/bench/data/alibaba-gpu-2023/openb_pod_list_default.csv";
  std::error_code error;
  if (std::filesystem::exists(in_repo, error)) return in_repo;
  return source +
         "/../shared/traces/alibaba-gpu-2023/openb_pod_list_default.csv";
}

StatusOr<TraceMix> LoadTraceMix(const std::string& path,
                                uint32_t max_duration_s,
                                int64_t max_price_per_card_hour) {
  TraceMix mix;
  std::error_code error;
  mix.pod_path = std::filesystem::is_directory(path, error)
                     ? path + "/openb_pod_list_default.csv"
                     : path;
  CN_ASSIGN_OR_RETURN(auto pods, ReadTraceCsv(mix.pod_path));
  for (const auto& pod : pods) {
    const uint32_t num_gpu = static_cast<uint32_t>(TraceNumber(pod.at("num_gpu")));
    const uint32_t gpu_milli =
        static_cast<uint32_t>(TraceNumber(pod.at("gpu_milli")));
    if (num_gpu == 0) {
      ++mix.cpu_only_pods;
      continue;
    }
    v1::JobSpec spec;
    spec.add_command("true");
    spec.set_nodes(1);
    if (num_gpu == 1 && gpu_milli > 0 && gpu_milli < 1000) {
      spec.set_gpu_milli(gpu_milli);
      spec.set_cards_per_node(1);
      ++mix.fractional;
    } else {
      spec.set_cards_per_node(num_gpu);
    }
    spec.set_cpu_milli_per_card(
        static_cast<uint32_t>(TraceNumber(pod.at("cpu_milli")) / num_gpu));
    spec.set_host_memory_mib_per_card(TraceNumber(pod.at("memory_mib")) / num_gpu);
    std::stringstream models(pod.at("gpu_spec"));
    std::string model;
    while (std::getline(models, model, '|')) {
      if (!model.empty()) spec.add_accelerator_models(model);
    }
    const std::string& qos = pod.at("qos");
    if (qos == "Guaranteed") {
      spec.set_priority(v1::PRIORITY_CLASS_HIGH);
    } else if (qos == "BE") {
      spec.set_priority(v1::PRIORITY_CLASS_LOW);
      spec.set_preemptible(true);
    } else {
      spec.set_priority(v1::PRIORITY_CLASS_NORMAL);
    }
    const int64_t duration =
        static_cast<int64_t>(TraceNumber(pod.at("deletion_time"))) -
        static_cast<int64_t>(TraceNumber(pod.at("creation_time")));
    spec.set_max_duration_s(static_cast<uint32_t>(std::clamp<int64_t>(
        duration, 1, static_cast<int64_t>(max_duration_s))));
    if (max_price_per_card_hour > 0) {
      spec.set_max_price_per_card_hour(max_price_per_card_hour);
    }
    mix.jobs.push_back(std::move(spec));
  }
  if (mix.jobs.empty()) {
    return InvalidArgumentError(mix.pod_path + " has no GPU pods");
  }

  const std::string node_path =
      std::filesystem::path(mix.pod_path).parent_path() /
      "openb_node_list_gpu_node.csv";
  auto nodes = ReadTraceCsv(node_path);
  if (nodes.ok()) {
    for (const auto& row : *nodes) {
      v1::Node node;
      node.set_name(row.at("sn"));
      node.set_cpu_cores(
          static_cast<uint32_t>(TraceNumber(row.at("cpu_milli")) / 1000));
      node.set_memory_mib(TraceNumber(row.at("memory_mib")));
      auto* card = node.add_accelerators();
      Describe(row.at("model"), card);
      card->set_count(static_cast<uint32_t>(TraceNumber(row.at("gpu"))));
      if (card->count() == 0) continue;
      mix.nodes.push_back(std::move(node));
    }
  } else {
    // No node list: 16 nodes of 8 cards per model, big enough for any pod.
    for (const auto& [model, info] : TraceModels()) {
      for (int i = 0; i < 16; ++i) {
        v1::Node node;
        node.set_name("synth-" + model + "-" + std::to_string(i));
        node.set_cpu_cores(96);
        node.set_memory_mib(786432);
        auto* card = node.add_accelerators();
        Describe(model, card);
        card->set_count(8);
        mix.nodes.push_back(std::move(node));
      }
    }
  }
  for (const auto& [model, info] : TraceModels()) {
    v1::Price price;
    price.set_model(model);
    price.set_per_card_hour(info.price);
    mix.prices.push_back(price);
  }
  return mix;
}

std::vector<v1::RegisterProvider> DealProviders(const TraceMix& mix, int count,
                                                const std::string& prefix,
                                                const std::string& region) {
  std::vector<v1::RegisterProvider> out(
      static_cast<size_t>(std::max(1, count)));
  for (size_t p = 0; p < out.size(); ++p) {
    auto& registration = out[p];
    registration.set_site(prefix + "-" + std::to_string(p));
    registration.set_region(region);
    registration.set_currency("CNY");
    registration.set_agent_version("loadgen");
  }
  for (size_t i = 0; i < mix.nodes.size(); ++i) {
    *out[i % out.size()].add_nodes() = mix.nodes[i];
  }
  // Price only the models each provider has (every installed model must be
  // priced; extra prices are harmless but keep it exact).
  for (size_t p = 0; p < out.size(); ++p) {
    auto& registration = out[p];
    for (const auto& price : mix.prices) {
      bool installed = false;
      for (const auto& node : registration.nodes()) {
        for (const auto& card : node.accelerators()) {
          installed = installed || card.model() == price.model();
        }
      }
      if (!installed) continue;
      auto* priced = registration.add_prices();
      *priced = price;
      priced->set_per_card_hour(price.per_card_hour() +
                                10 * static_cast<int64_t>(p));
    }
  }
  return out;
}

}  // namespace computenet::loadgen
