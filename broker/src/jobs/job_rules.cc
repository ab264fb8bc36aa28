#include "core/imports.h"
#include "jobs/job_rules.h"

#include <algorithm>
#include <set>

#include "computenet/common/identity.h"
#include "computenet/common/safe_text.h"
#include "computenet/common/secrets.h"
#include "computenet/common/sha256.h"
#include "computenet/matching/site_policy.h"

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
    // execve would silently cut the argument at the NUL.
    if (arg.find('\0') != std::string::npos) {
      return InvalidArgumentError("job spec: an argument contains a NUL byte");
    }
  }
  if (spec.command(0).empty()) {
    return InvalidArgumentError("job spec: command[0] is empty");
  }
  if (spec.inputs_size() > 16) {
    return InvalidArgumentError("job spec: more than 16 inputs");
  }
  for (const auto& input : spec.inputs()) {
    if (!IsSha256Hex(input.digest()) || input.size() == 0) {
      return InvalidArgumentError(
          "job spec: an input needs a SHA-256 digest (64 lower-case hex) and "
          "its size");
    }
  }
  if (static_cast<size_t>(spec.env_size()) > kMaxEnvEntries) {
    return InvalidArgumentError("job spec: more than 128 env entries");
  }
  for (const auto& [key, value] : spec.env()) {
    if (key.empty() || key.find('=') != std::string::npos ||
        key.find('\0') != std::string::npos ||
        value.find('\0') != std::string::npos || key.size() > 256 ||
        value.size() > kMaxArgBytes) {
      // The key is quoted safely and short: it is the caller's input.
      return InvalidArgumentError("job spec: bad env entry '" +
                                  SafeText(key, 64) + "'");
    }
  }
  CN_RETURN_IF_ERROR(ValidateSecretEnv(spec));
  // Every message built from the spec (the offer to the provider, GetJob's
  // reply, a JobEvent, a forward to a peer) must stay under the frame limit:
  // each argument alone could be 4 KiB, but 255 of them made a job no
  // message could carry, and the provider was disconnected by every offer.
  if (spec.ByteSizeLong() > kMaxJobSpecBytes) {
    return InvalidArgumentError(
        "job spec: " + std::to_string(spec.ByteSizeLong()) +
        " bytes, more than the " + std::to_string(kMaxJobSpecBytes / 1024) +
        " KiB a job may take (command, env, secret env and all)");
  }
  CN_RETURN_IF_ERROR(ValidatePlacementRequest(spec));
  if (spec.max_duration_s() == 0 || spec.max_duration_s() > kMaxDurationSeconds) {
    return InvalidArgumentError(
        "job spec: max_duration_s must be 1 s .. 366 days");
  }
  if (spec.max_price_per_card_hour() < 0 ||
      spec.max_price_per_card_hour() > kMaxPricePerCardHour) {
    return InvalidArgumentError("job spec: max_price_per_card_hour out of range");
  }
  if (spec.max_price_per_a100_hour() < 0 ||
      spec.max_price_per_a100_hour() > kMaxPricePerCardHour) {
    return InvalidArgumentError("job spec: max_price_per_a100_hour out of range");
  }
  if (spec.name().size() > 128) {
    return InvalidArgumentError("job spec: name longer than 128 bytes");
  }
  for (char c : spec.name()) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return InvalidArgumentError(
          "job spec: name contains a control character (NUL, newline, ...)");
    }
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

namespace {

// A list of short names (regions, providers, classes): at most 64 entries,
// each 1..64 bytes.
Status CheckNames(const google::protobuf::RepeatedPtrField<std::string>& names,
                  const std::string& field) {
  if (names.size() > 64) {
    return InvalidArgumentError("job spec: more than 64 " + field);
  }
  for (const auto& name : names) {
    if (name.empty() || name.size() > 64) {
      return InvalidArgumentError("job spec: " + field +
                                  " entries must be 1..64 bytes");
    }
  }
  return OkStatus();
}

}  // namespace

Status ValidatePlacementRequest(const v1::JobSpec& spec) {
  const bool compute = spec.a100_equivalents_milli() > 0;
  const bool fractional = spec.gpu_milli() > 0;
  if (compute && fractional) {
    return InvalidArgumentError(
        "job spec: a100_equivalents_milli and gpu_milli exclude each other");
  }
  if (compute) {
    if (spec.cards_per_node() != 0 || spec.nodes() > 1) {
      return InvalidArgumentError(
          "job spec: with a100_equivalents_milli leave cards_per_node 0 and "
          "nodes 0 or 1; the broker chooses the cards");
    }
    if (spec.a100_equivalents_milli() > kMaxA100EquivalentsMilli) {
      return InvalidArgumentError(
          "job spec: a100_equivalents_milli must be at most " +
          std::to_string(kMaxA100EquivalentsMilli));
    }
  } else if (fractional) {
    if (spec.gpu_milli() >= 1000) {
      return InvalidArgumentError(
          "job spec: gpu_milli must be 1..999 (a share of one card); ask "
          "for whole cards with cards_per_node");
    }
    if (spec.cards_per_node() > 1 || spec.nodes() > 1) {
      return InvalidArgumentError(
          "job spec: a fractional job (gpu_milli) takes one share of one "
          "card: cards_per_node and nodes must be 0 or 1");
    }
  } else {
    if (spec.cards_per_node() == 0 || spec.cards_per_node() > kMaxCardsPerNode) {
      return InvalidArgumentError("job spec: cards_per_node must be 1.." +
                                  std::to_string(kMaxCardsPerNode));
    }
    if (spec.nodes() > kMaxNodes) {
      return InvalidArgumentError("job spec: nodes must be at most " +
                                  std::to_string(kMaxNodes));
    }
  }
  if (spec.min_memory_mib() > (uint64_t{1} << 30)) {
    return InvalidArgumentError("job spec: min_memory_mib out of range");
  }
  if (spec.cpu_milli_per_card() > 1'024'000) {
    return InvalidArgumentError(
        "job spec: cpu_milli_per_card must be at most 1024000 (1024 cores)");
  }
  if (spec.host_memory_mib_per_card() > (uint64_t{1} << 32)) {
    return InvalidArgumentError("job spec: host_memory_mib_per_card out of range");
  }
  CN_RETURN_IF_ERROR(CheckNames(spec.vendor_classes(), "vendor_classes"));
  CN_RETURN_IF_ERROR(CheckNames(spec.allowed_regions(), "allowed_regions"));
  CN_RETURN_IF_ERROR(CheckNames(spec.preferred_regions(), "preferred_regions"));
  CN_RETURN_IF_ERROR(CheckNames(spec.excluded_providers(), "excluded_providers"));
  if (!spec.allowed_regions().empty()) {
    for (const auto& region : spec.preferred_regions()) {
      if (std::find(spec.allowed_regions().begin(), spec.allowed_regions().end(),
                    region) == spec.allowed_regions().end()) {
        return InvalidArgumentError("job spec: preferred region '" + region +
                                    "' is not among the allowed regions");
      }
    }
  }
  if (!v1::PriorityClass_IsValid(spec.priority())) {
    return InvalidArgumentError("job spec: unknown priority class " +
                                std::to_string(spec.priority()));
  }
  if (spec.max_attempts() > kMaxAttempts) {
    return InvalidArgumentError("job spec: max_attempts must be at most " +
                                std::to_string(kMaxAttempts));
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
  CN_RETURN_IF_ERROR(matching::ValidateSitePolicy(registration.policy()));
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
    if (!v1::CapacityOffer_IsValid(node.offer())) {
      return bad("unknown offer kind on node " + node.name());
    }
    if (node.cpu_cores() > kMaxNodeCpuCores) {
      return bad("node " + node.name() + " has more than " +
                 std::to_string(kMaxNodeCpuCores) + " CPU cores");
    }
    if (node.memory_mib() > kMaxNodeMemoryMib) {
      return bad("node " + node.name() + " memory_mib out of range");
    }
    if (node.accelerators_size() > 16) {
      return bad("node " + node.name() + " lists more than 16 accelerator entries");
    }
    // Summed in 64 bits: two entries of 2^31 cards each must not wrap to 0
    // and pass (a 32-bit sum did, and the broker then crashed on the node).
    uint64_t cards = 0;
    for (const auto& accelerator : node.accelerators()) {
      if (accelerator.model().empty() || accelerator.model().size() > 64) {
        return bad("bad model name on node " + node.name());
      }
      if (accelerator.count() == 0) {
        return bad("zero-count accelerator on node " + node.name());
      }
      if (accelerator.measurement().size() > 256 ||
          accelerator.vendor().size() > 64 ||
          accelerator.vendor_class().size() > 32) {
        return bad("accelerator description too long on node " + node.name());
      }
      if (accelerator.memory_mib() > kMaxCardMemoryMib ||
          accelerator.measured_dense_gflops() > kMaxCardDenseGflops) {
        return bad("accelerator figures out of range on node " + node.name());
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
    if (price.has_spare_per_card_hour() &&
        (price.spare_per_card_hour() < 0 ||
         price.spare_per_card_hour() > kMaxPricePerCardHour)) {
      return bad("spare price for " + price.model() + " out of range");
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

}  // namespace computenet::broker
