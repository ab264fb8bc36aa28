// Site policies: what a provider's site accepts (two-sided matching). The
// broker's matcher places a job only on sites whose policy admits it, and
// the agent checks every offer against its own policy again, so neither
// side has to trust the other (docs/matching.md, "Site policies").
//
// Thread safety: stateless functions; safe from any thread.
#ifndef COMPUTENET_MATCHING_SITE_POLICY_H_
#define COMPUTENET_MATCHING_SITE_POLICY_H_

#include <cstdint>
#include <string>

#include "computenet/common/status.h"
#include "computenet/v1/job.pb.h"
#include "computenet/v1/provider.pb.h"

namespace computenet::matching {

// What a policy looks at in a job.
struct PolicySubject {
  std::string organization;
  uint32_t max_duration_s = 0;
  bool preemptible = false;
  uint32_t nodes = 1;  // a gang's nodes
  bool network_access = false;

  static PolicySubject Of(const v1::JobSpec& spec, const std::string& organization);
};

// True if the policy restricts nothing (the common case, checked first).
bool PolicyIsOpen(const v1::SitePolicy& policy);

// OK if the site admits the job; FAILED_PRECONDITION naming the rule
// otherwise ("site policy: organization 'x' is not admitted", ...).
Status CheckSitePolicy(const v1::SitePolicy& policy, const PolicySubject& job);

// INVALID_ARGUMENT for a policy that cannot be meant: a minimum duration
// above the maximum, an organization both allowed and denied, an empty or
// over-long organization name, more than 1,000 names.
Status ValidateSitePolicy(const v1::SitePolicy& policy);

}  // namespace computenet::matching

#endif  // COMPUTENET_MATCHING_SITE_POLICY_H_
