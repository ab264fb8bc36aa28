// Two-sided matching: each rule of a SitePolicy, its validation, and the
// matcher honouring it (placement elsewhere, the reason when no site
// admits a job, refusal at submit when none ever would).
#include "computenet/matching/site_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "computenet/matching/matcher.h"
#include "test_support.h"

namespace computenet::matching {
namespace {

using ::testing::HasSubstr;
using testing::MakeNode;
using testing::MakeRegistration;

PolicySubject Job(const std::string& organization = "org-a") {
  PolicySubject job;
  job.organization = organization;
  job.max_duration_s = 3600;
  return job;
}

void ExpectRefused(const v1::SitePolicy& policy, const PolicySubject& job,
                   const std::string& why) {
  Status status = CheckSitePolicy(policy, job);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << why;
  EXPECT_THAT(status.message(), HasSubstr(why));
}

TEST(SitePolicyTest, AnOpenPolicyAdmitsEverything) {
  v1::SitePolicy open;
  EXPECT_TRUE(PolicyIsOpen(open));
  PolicySubject job = Job();
  job.nodes = 64;
  job.network_access = true;
  EXPECT_TRUE(CheckSitePolicy(open, job).ok());
}

TEST(SitePolicyTest, EachRuleRefusesWithItsReason) {
  v1::SitePolicy allow;
  allow.add_allowed_organizations("org-b");
  ExpectRefused(allow, Job("org-a"), "organization 'org-a' is not among the admitted");
  EXPECT_TRUE(CheckSitePolicy(allow, Job("org-b")).ok());

  v1::SitePolicy deny;
  deny.add_denied_organizations("org-a");
  ExpectRefused(deny, Job("org-a"), "'org-a' is denied");
  EXPECT_TRUE(CheckSitePolicy(deny, Job("org-b")).ok());

  v1::SitePolicy durations;
  durations.set_min_duration_s(600);
  durations.set_max_duration_s(7200);
  PolicySubject short_job = Job();
  short_job.max_duration_s = 60;
  ExpectRefused(durations, short_job, "at least 600 s");
  PolicySubject long_job = Job();
  long_job.max_duration_s = 86'400;
  ExpectRefused(durations, long_job, "at most 7200 s");
  EXPECT_TRUE(CheckSitePolicy(durations, Job()).ok());

  v1::SitePolicy preemptible;
  preemptible.set_preemptible_only(true);
  ExpectRefused(preemptible, Job(), "preemptible jobs only");
  PolicySubject yielding = Job();
  yielding.preemptible = true;
  EXPECT_TRUE(CheckSitePolicy(preemptible, yielding).ok());

  v1::SitePolicy gangs;
  gangs.set_max_gang_nodes(4);
  PolicySubject gang = Job();
  gang.nodes = 8;
  ExpectRefused(gangs, gang, "gangs of at most 4 node(s) (the job has 8)");

  v1::SitePolicy offline;
  offline.set_no_network(true);
  PolicySubject online = Job();
  online.network_access = true;
  ExpectRefused(offline, online, "no network access");
  EXPECT_TRUE(CheckSitePolicy(offline, Job()).ok());
}

TEST(SitePolicyTest, HostileNamesAreQuotedSafely) {
  v1::SitePolicy deny;
  deny.add_denied_organizations(std::string("evil\nname\0x", 11));
  Status status = CheckSitePolicy(deny, Job(std::string("evil\nname\0x", 11)));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
  EXPECT_EQ(std::string(status.message()).find('\0'), std::string::npos);
}

TEST(SitePolicyTest, PoliciesThatCannotBeMeantAreInvalid) {
  v1::SitePolicy both;
  both.add_allowed_organizations("org-a");
  both.add_denied_organizations("org-a");
  EXPECT_EQ(ValidateSitePolicy(both).code(), StatusCode::kInvalidArgument);
  v1::SitePolicy inverted;
  inverted.set_min_duration_s(100);
  inverted.set_max_duration_s(10);
  EXPECT_THAT(ValidateSitePolicy(inverted).message(), HasSubstr("above max_duration_s"));
  v1::SitePolicy empty_name;
  empty_name.add_denied_organizations("");
  EXPECT_FALSE(ValidateSitePolicy(empty_name).ok());
  v1::SitePolicy many;
  for (int i = 0; i < 1001; ++i) many.add_allowed_organizations("o" + std::to_string(i));
  EXPECT_FALSE(ValidateSitePolicy(many).ok());
  EXPECT_TRUE(ValidateSitePolicy(v1::SitePolicy()).ok());
}

class TwoSidedMatchingTest : public ::testing::Test {
 protected:
  void Add(const std::string& name, int64_t price, const v1::SitePolicy& policy) {
    v1::RegisterProvider registration =
        MakeRegistration(name, {MakeNode("n1", "ib-1", "A800", 8)}, {{"A800", price}});
    *registration.mutable_policy() = policy;
    ASSERT_TRUE(index_.UpsertProvider(name, registration).ok());
    index_.SetOnline(name, true);
  }
  PlacementRequest Request(const std::string& organization) {
    v1::JobSpec spec = testing::ShellJob("true", 2);
    spec.set_max_duration_s(3600);
    PlacementRequest request = PlacementRequest::FromSpec(spec);
    request.organization = organization;
    return request;
  }
  CapacityIndex index_;
  PlacementMatcher matcher_;
};

TEST_F(TwoSidedMatchingTest, AJobGoesToTheCheapestSiteThatAdmitsIt) {
  v1::SitePolicy members_only;
  members_only.add_allowed_organizations("org-member");
  Add("cheap", 1000, members_only);
  Add("dear", 2000, v1::SitePolicy());
  auto member = matcher_.Match(Request("org-member"), index_, {});
  ASSERT_TRUE(member.has_value());
  EXPECT_EQ(member->provider, "cheap");
  auto outsider = matcher_.Match(Request("org-outsider"), index_, {});
  ASSERT_TRUE(outsider.has_value());
  EXPECT_EQ(outsider->provider, "dear");
}

TEST_F(TwoSidedMatchingTest, NoSiteAdmitsItSaysWhyAndIsRefusedAtSubmit) {
  v1::SitePolicy short_only;
  short_only.set_max_duration_s(600);
  Add("only", 1000, short_only);
  const PlacementRequest request = Request("org-a");
  EXPECT_FALSE(matcher_.Match(request, index_, {}).has_value());
  EXPECT_THAT(matcher_.ExplainNoFit(request, index_, {}),
              HasSubstr("no site with a matching offer admits the job (only: site policy: "
                        "jobs of at most 600 s only"));
  Status ever = matcher_.CheckEverFits(request, index_);
  EXPECT_EQ(ever.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(ever.message(), HasSubstr("no known site admits the job by its policy"));
  PlacementRequest shorter = request;
  shorter.max_duration_s = 300;
  EXPECT_TRUE(matcher_.Match(shorter, index_, {}).has_value());
}

}  // namespace
}  // namespace computenet::matching
