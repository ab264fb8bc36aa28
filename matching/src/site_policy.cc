#include "computenet/matching/site_policy.h"

#include <algorithm>
#include <set>

namespace computenet::matching {
namespace {

constexpr int kMaxNames = 1000;
constexpr size_t kMaxNameBytes = 128;

bool Listed(const google::protobuf::RepeatedPtrField<std::string>& names,
            const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Organization names come from enrollment; quoted short and printable.
std::string Quoted(const std::string& name) {
  std::string out = "'";
  for (char c : name.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out + (name.size() > 64 ? "...'" : "'");
}

}  // namespace

PolicySubject PolicySubject::Of(const v1::JobSpec& spec, const std::string& organization) {
  PolicySubject subject;
  subject.organization = organization;
  subject.max_duration_s = spec.max_duration_s();
  subject.preemptible = spec.preemptible();
  subject.nodes = std::max<uint32_t>(1, spec.nodes());
  subject.network_access = spec.network_access();
  return subject;
}

bool PolicyIsOpen(const v1::SitePolicy& policy) {
  return policy.allowed_organizations_size() == 0 &&
         policy.denied_organizations_size() == 0 && policy.min_duration_s() == 0 &&
         policy.max_duration_s() == 0 && !policy.preemptible_only() &&
         policy.max_gang_nodes() == 0 && !policy.no_network();
}

Status CheckSitePolicy(const v1::SitePolicy& policy, const PolicySubject& job) {
  if (PolicyIsOpen(policy)) return OkStatus();
  if (policy.allowed_organizations_size() > 0 &&
      !Listed(policy.allowed_organizations(), job.organization)) {
    return FailedPreconditionError("site policy: organization " + Quoted(job.organization) +
                                   " is not among the admitted ones");
  }
  if (Listed(policy.denied_organizations(), job.organization)) {
    return FailedPreconditionError("site policy: organization " + Quoted(job.organization) +
                                   " is denied");
  }
  if (policy.min_duration_s() > 0 && job.max_duration_s < policy.min_duration_s()) {
    return FailedPreconditionError(
        "site policy: jobs of at least " + std::to_string(policy.min_duration_s()) +
        " s only (max_duration_s " + std::to_string(job.max_duration_s) + ")");
  }
  if (policy.max_duration_s() > 0 && job.max_duration_s > policy.max_duration_s()) {
    return FailedPreconditionError(
        "site policy: jobs of at most " + std::to_string(policy.max_duration_s()) +
        " s only (max_duration_s " + std::to_string(job.max_duration_s) + ")");
  }
  if (policy.preemptible_only() && !job.preemptible) {
    return FailedPreconditionError("site policy: preemptible jobs only");
  }
  if (policy.max_gang_nodes() > 0 && job.nodes > policy.max_gang_nodes()) {
    return FailedPreconditionError("site policy: gangs of at most " +
                                   std::to_string(policy.max_gang_nodes()) +
                                   " node(s) (the job has " + std::to_string(job.nodes) + ")");
  }
  if (policy.no_network() && job.network_access) {
    return FailedPreconditionError("site policy: no network access for jobs");
  }
  return OkStatus();
}

Status ValidateSitePolicy(const v1::SitePolicy& policy) {
  if (policy.allowed_organizations_size() + policy.denied_organizations_size() > kMaxNames) {
    return InvalidArgumentError("site policy: more than " + std::to_string(kMaxNames) +
                                " organization names");
  }
  std::set<std::string> allowed;
  for (const auto& list : {&policy.allowed_organizations(), &policy.denied_organizations()}) {
    for (const auto& name : *list) {
      if (name.empty() || name.size() > kMaxNameBytes) {
        return InvalidArgumentError("site policy: organization names are 1-" +
                                    std::to_string(kMaxNameBytes) + " bytes");
      }
    }
  }
  for (const auto& name : policy.allowed_organizations()) allowed.insert(name);
  for (const auto& name : policy.denied_organizations()) {
    if (allowed.count(name) != 0) {
      return InvalidArgumentError("site policy: organization " + Quoted(name) +
                                  " is both allowed and denied");
    }
  }
  if (policy.min_duration_s() > 0 && policy.max_duration_s() > 0 &&
      policy.min_duration_s() > policy.max_duration_s()) {
    return InvalidArgumentError("site policy: min_duration_s " +
                                std::to_string(policy.min_duration_s()) +
                                " is above max_duration_s " +
                                std::to_string(policy.max_duration_s()));
  }
  return OkStatus();
}

}  // namespace computenet::matching
