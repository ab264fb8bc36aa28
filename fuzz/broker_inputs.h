// What the broker-side harnesses share: the checks the broker runs on a
// request body before any state is touched, in the order its handlers run
// them (broker/src/services/*.cc), and a capacity index with one sample
// provider for the matcher to place on.
//
// Thread safety: one thread (libFuzzer's).
#ifndef COMPUTENET_FUZZ_BROKER_INPUTS_H_
#define COMPUTENET_FUZZ_BROKER_INPUTS_H_

#include <memory>
#include <string>

#include "computenet/common/envelope.h"
#include "computenet/matching/capacity_index.h"
#include "computenet/matching/matcher.h"
#include "computenet/v1/consumer.pb.h"
#include "computenet/v1/provider.pb.h"
#include "jobs/job_rules.h"

namespace computenet::fuzz {

// A small site like examples/site.toml: two A800 nodes in one fabric, a
// spare L40S node and a domestic 910B node, all priced.
inline v1::RegisterProvider SampleRegistration() {
  v1::RegisterProvider registration;
  registration.set_site("zhangbei-dc1");
  registration.set_region("north");
  registration.set_currency("CNY");
  auto add_node = [&](const std::string& name, const std::string& fabric,
                      const std::string& model, uint32_t count,
                      v1::CapacityOffer offer) {
    v1::Node* node = registration.add_nodes();
    node->set_name(name);
    node->set_fabric_id(fabric);
    node->set_cpu_cores(128);
    node->set_memory_mib(1 << 20);
    node->set_offer(offer);
    v1::Accelerator* accelerator = node->add_accelerators();
    accelerator->set_model(model);
    accelerator->set_memory_mib(81920);
    accelerator->set_count(count);
  };
  add_node("a800-1", "ib-1", "A800", 8, v1::CAPACITY_OFFER_DEDICATED);
  add_node("a800-2", "ib-1", "A800", 8, v1::CAPACITY_OFFER_DEDICATED);
  add_node("l40s-1", "eth-1", "L40S", 4, v1::CAPACITY_OFFER_SPARE);
  add_node("910b-1", "hccs-1", "910B", 8, v1::CAPACITY_OFFER_DEDICATED);
  for (const auto& [model, price] :
       {std::pair<const char*, int64_t>{"A800", 1500},
        {"L40S", 600},
        {"910B", 900}}) {
    v1::Price* entry = registration.add_prices();
    entry->set_model(model);
    entry->set_per_card_hour(price);
  }
  return registration;
}

// The index the broker's registry keeps, with the sample site online.
inline matching::CapacityIndex& SampleCapacity() {
  static matching::CapacityIndex* index = [] {
    auto* made = new matching::CapacityIndex();
    if (!made->UpsertProvider("site-a", SampleRegistration()).ok()) {
      __builtin_trap();
    }
    made->SetOnline("site-a", true);
    return made;
  }();
  return *index;
}

// A spec the broker accepted: what the submit path does with it next (the
// "ever fits" check when it has no peers, the matcher, and the reason a
// waiting job shows), and the frame-limit promise: the event that carries
// the job must fit a frame.
inline void PlaceAcceptedSpec(const v1::JobSpec& spec,
                              const matching::CapacityIndex& capacity) {
  if (spec.ByteSizeLong() > broker::kMaxJobSpecBytes) __builtin_trap();
  v1::JobEvent event;
  event.mutable_job()->set_job_id("hub-north-18446744073709551615");
  *event.mutable_job()->mutable_spec() = spec;
  if (EncodeEnvelope(v1::MESSAGE_TYPE_JOB_EVENT, 0, 0, event).size() >
      static_cast<size_t>(kMaxMessageBytes)) {
    __builtin_trap();
  }
  const matching::PlacementMatcher matcher;
  matching::PlacementRequest request =
      matching::PlacementRequest::FromSpec(spec);
  request.organization = "lab-a";
  (void)request.Describe();
  (void)request.DemandMilli();
  (void)matcher.CheckEverFits(request, capacity);
  const matching::MatchContext context;
  if (!matcher.Match(request, capacity, context).has_value()) {
    (void)matcher.ExplainNoFit(request, capacity, context);
  }
}

// A registration the broker accepted: indexed as the registry indexes it
// (UpsertProvider; the 2^31 + 2^31 cards crash lived here), then a few
// requests placed on it.
inline void IndexAcceptedRegistration(
    const v1::RegisterProvider& registration) {
  matching::CapacityIndex capacity;
  if (!capacity.UpsertProvider("site-b", registration).ok()) return;
  capacity.SetOnline("site-b", true);
  (void)capacity.Totals();
  for (uint32_t cards : {1u, 8u, 64u}) {
    v1::JobSpec spec;
    spec.add_command("true");
    spec.set_cards_per_node(cards);
    spec.set_max_duration_s(60);
    PlaceAcceptedSpec(spec, capacity);
  }
  v1::JobSpec gang;
  gang.add_command("true");
  gang.set_cards_per_node(8);
  gang.set_nodes(2);
  gang.set_max_duration_s(60);
  PlaceAcceptedSpec(gang, capacity);
  v1::JobSpec compute;
  compute.add_command("true");
  compute.set_a100_equivalents_milli(4000);
  compute.set_max_duration_s(60);
  PlaceAcceptedSpec(compute, capacity);
}

}  // namespace computenet::fuzz

#endif  // COMPUTENET_FUZZ_BROKER_INPUTS_H_
