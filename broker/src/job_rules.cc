#include "computenet/broker/job_rules.h"

#include <set>

#include "computenet/common/identity.h"

namespace computenet::broker {

Status ValidateJobSpec(const v1::JobSpec& spec) {
  if (spec.command().empty()) {
    return InvalidArgumentError("job spec: command is empty");
  }
  if (static_cast<size_t>(spec.command_size()) > kMaxCommandArgs) {
    return InvalidArgumentError("job spec: more than " +
                                std::to_string(kMaxCommandArgs) + " arguments");
  }
  for (const auto& arg : spec.command()) {
    if (arg.size() > kMaxArgBytes) {
      return InvalidArgumentError("job spec: an argument exceeds 4 KiB");
    }
  }
  if (spec.command(0).empty()) {
    return InvalidArgumentError("job spec: command[0] is empty");
  }
  if (static_cast<size_t>(spec.env_size()) > kMaxEnvEntries) {
    return InvalidArgumentError("job spec: more than 128 env entries");
  }
  for (const auto& [key, value] : spec.env()) {
    if (key.empty() || key.find('=') != std::string::npos ||
        key.size() > 256 || value.size() > kMaxArgBytes) {
      return InvalidArgumentError("job spec: bad env entry '" + key + "'");
    }
  }
  if (spec.cards_per_node() == 0 || spec.cards_per_node() > kMaxCardsPerNode) {
    return InvalidArgumentError("job spec: cards_per_node must be 1.." +
                                std::to_string(kMaxCardsPerNode));
  }
  if (spec.nodes() > kMaxNodes) {
    return InvalidArgumentError("job spec: nodes must be at most " +
                                std::to_string(kMaxNodes));
  }
  if (spec.max_duration_s() == 0 || spec.max_duration_s() > kMaxDurationSeconds) {
    return InvalidArgumentError(
        "job spec: max_duration_s must be 1 s .. 366 days");
  }
  if (spec.max_price_per_card_hour() < 0 ||
      spec.max_price_per_card_hour() > kMaxPricePerCardHour) {
    return InvalidArgumentError("job spec: max_price_per_card_hour out of range");
  }
  if (spec.name().size() > 128) {
    return InvalidArgumentError("job spec: name longer than 128 bytes");
  }
  if (spec.accelerator_models_size() > 64) {
    return InvalidArgumentError("job spec: more than 64 models");
  }
  for (const auto& model : spec.accelerator_models()) {
    if (model.empty() || model.size() > 64) {
      return InvalidArgumentError("job spec: bad model name");
    }
  }
  return OkStatus();
}

Status ValidateRegistration(const v1::RegisterProvider& registration) {
  auto bad = [](const std::string& what) {
    return InvalidArgumentError("registration: " + what);
  };
  if (registration.site().empty() || registration.site().size() > 128) {
    return bad("site must be 1..128 bytes");
  }
  if (registration.region().empty() || registration.region().size() > 64) {
    return bad("region must be 1..64 bytes");
  }
  if (registration.currency().size() != 3) {
    return bad("currency must be a 3-letter ISO 4217 code");
  }
  if (registration.nodes().empty() ||
      static_cast<size_t>(registration.nodes_size()) > kMaxProviderNodes) {
    return bad("must list 1.." + std::to_string(kMaxProviderNodes) + " nodes");
  }
  std::set<std::string> node_names;
  std::set<std::string> models;
  for (const auto& node : registration.nodes()) {
    if (!ValidatePartyName(node.name()).ok()) {
      return bad("bad node name '" + node.name() + "'");
    }
    if (!node_names.insert(node.name()).second) {
      return bad("duplicate node '" + node.name() + "'");
    }
    if (node.fabric_id().size() > 128) return bad("fabric id too long");
    uint32_t cards = 0;
    for (const auto& accelerator : node.accelerators()) {
      if (accelerator.model().empty() || accelerator.model().size() > 64) {
        return bad("bad model name on node " + node.name());
      }
      if (accelerator.count() == 0) {
        return bad("zero-count accelerator on node " + node.name());
      }
      cards += accelerator.count();
      models.insert(accelerator.model());
    }
    if (cards > kMaxCardsPerNode) {
      return bad("node " + node.name() + " has more than 64 cards");
    }
  }
  std::set<std::string> priced;
  for (const auto& price : registration.prices()) {
    if (price.per_card_hour() < 0 || price.per_card_hour() > kMaxPricePerCardHour) {
      return bad("price for " + price.model() + " out of range");
    }
    priced.insert(price.model());
  }
  for (const auto& model : models) {
    if (priced.count(model) == 0) return bad("no price for model " + model);
  }
  if (registration.active_job_ids_size() > 100000) {
    return bad("too many active jobs");
  }
  return OkStatus();
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

std::string JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_PLACED: return "placed";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_FAILED: return "failed";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

uint32_t TotalCards(const v1::JobInfo& job) {
  uint32_t cards = 0;
  for (const auto& assignment : job.assignments()) {
    cards += static_cast<uint32_t>(assignment.device_indices_size());
  }
  return cards;
}

}  // namespace computenet::broker
