// Request forms end to end without sockets: the broker's validation of each
// new JobSpec field (INVALID_ARGUMENT naming it), and the consumer SDK's
// parsing of what people type ("A800|H800", "2.5", "high").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "jobs/job_rules.h"
#include "computenet/consumer/request_forms.h"
#include "test_support.h"

namespace computenet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ShellJob;

void ExpectInvalid(const v1::JobSpec& spec, const std::string& mentions) {
  Status status = broker::ValidateJobSpec(spec);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr(mentions));
}

void ExpectValid(const v1::JobSpec& spec) {
  Status status = broker::ValidateJobSpec(spec);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST(RequestFormValidationTest, ComputeEquivalence) {
  v1::JobSpec spec = ShellJob("true", 0);
  spec.set_a100_equivalents_milli(8000);
  ExpectValid(spec);
  spec.set_cards_per_node(2);
  ExpectInvalid(spec, "leave cards_per_node 0");
  spec.set_cards_per_node(0);
  spec.set_nodes(2);
  ExpectInvalid(spec, "nodes 0 or 1");
  spec.set_nodes(1);
  spec.set_a100_equivalents_milli(broker::kMaxA100EquivalentsMilli + 1);
  ExpectInvalid(spec, "a100_equivalents_milli must be at most");
}

TEST(RequestFormValidationTest, FractionalCards) {
  v1::JobSpec spec = ShellJob("true", 1);
  spec.set_gpu_milli(460);
  ExpectValid(spec);
  spec.set_cards_per_node(0);
  ExpectValid(spec);
  spec.set_gpu_milli(1000);
  ExpectInvalid(spec, "gpu_milli must be 1..999");
  spec.set_gpu_milli(500);
  spec.set_cards_per_node(2);
  ExpectInvalid(spec, "one share of one card");
  spec.set_cards_per_node(1);
  spec.set_nodes(2);
  ExpectInvalid(spec, "one share of one card");
  spec.set_nodes(1);
  spec.set_a100_equivalents_milli(500);
  ExpectInvalid(spec, "exclude each other");
}

TEST(RequestFormValidationTest, WholeCardsStillNeedCards) {
  ExpectInvalid(ShellJob("true", 0), "cards_per_node must be 1..64");
}

TEST(RequestFormValidationTest, MemoryClassAndHostResources) {
  v1::JobSpec spec = ShellJob("true", 2);
  spec.set_min_memory_mib(81920);
  spec.add_vendor_classes("domestic");
  spec.set_cpu_milli_per_card(8000);
  spec.set_host_memory_mib_per_card(65536);
  ExpectValid(spec);
  v1::JobSpec memory = spec;
  memory.set_min_memory_mib((uint64_t{1} << 30) + 1);
  ExpectInvalid(memory, "min_memory_mib");
  v1::JobSpec cpu = spec;
  cpu.set_cpu_milli_per_card(2'000'000);
  ExpectInvalid(cpu, "cpu_milli_per_card");
  v1::JobSpec host = spec;
  host.set_host_memory_mib_per_card((uint64_t{1} << 32) + 1);
  ExpectInvalid(host, "host_memory_mib_per_card");
  v1::JobSpec klass = spec;
  klass.add_vendor_classes("");
  ExpectInvalid(klass, "vendor_classes");
}

TEST(RequestFormValidationTest, RegionsAndProviders) {
  v1::JobSpec spec = ShellJob("true", 1);
  spec.add_allowed_regions("north");
  spec.add_allowed_regions("east");
  spec.add_preferred_regions("east");
  spec.add_excluded_providers("site-z");
  ExpectValid(spec);
  v1::JobSpec outside = spec;
  outside.add_preferred_regions("west");
  ExpectInvalid(outside, "preferred region 'west' is not among the allowed");
  v1::JobSpec too_many = ShellJob("true", 1);
  for (int i = 0; i < 65; ++i) too_many.add_excluded_providers("p" + std::to_string(i));
  ExpectInvalid(too_many, "more than 64 excluded_providers");
  v1::JobSpec long_region = ShellJob("true", 1);
  long_region.add_allowed_regions(std::string(65, 'r'));
  ExpectInvalid(long_region, "allowed_regions entries must be 1..64 bytes");
  // Preferred regions without allowed ones are just preferences.
  v1::JobSpec preferred_only = ShellJob("true", 1);
  preferred_only.add_preferred_regions("west");
  ExpectValid(preferred_only);
}

TEST(RequestFormValidationTest, PriceCeilingsPriorityAttemptsPreemptible) {
  v1::JobSpec spec = ShellJob("true", 1);
  spec.set_max_price_per_a100_hour(1200);
  spec.set_preemptible(true);
  spec.set_priority(v1::PRIORITY_CLASS_HIGH);
  spec.set_max_attempts(10);
  ExpectValid(spec);
  v1::JobSpec price = spec;
  price.set_max_price_per_a100_hour(-1);
  ExpectInvalid(price, "max_price_per_a100_hour");
  v1::JobSpec priority = spec;
  priority.set_priority(static_cast<v1::PriorityClass>(9));
  ExpectInvalid(priority, "unknown priority class 9");
  v1::JobSpec attempts = spec;
  attempts.set_max_attempts(broker::kMaxAttempts + 1);
  ExpectInvalid(attempts, "max_attempts must be at most 100");
}

TEST(RequestFormParsingTest, ModelAlternatives) {
  auto models = consumer::ParseAlternatives({"A800|H800", "H800", "910B"}, "--model");
  ASSERT_TRUE(models.ok());
  EXPECT_THAT(*models, ElementsAre("A800", "H800", "910B"));
  EXPECT_EQ(consumer::ParseAlternatives({"A800||H800"}, "--model").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_THAT(consumer::ParseAlternatives({"|A800"}, "--model").status().message(),
              HasSubstr("--model: empty name"));
  auto none = consumer::ParseAlternatives({}, "--model");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(RequestFormParsingTest, MilliWithoutFloatingPoint) {
  EXPECT_EQ(*consumer::ParseMilli("8", "x", 1'000'000), 8000u);
  EXPECT_EQ(*consumer::ParseMilli("2.5", "x", 1'000'000), 2500u);
  EXPECT_EQ(*consumer::ParseMilli("0.125", "x", 1'000'000), 125u);
  EXPECT_EQ(*consumer::ParseMilli("100000", "x", 100'000'000), 100'000'000u);
  for (const char* bad : {"", "0", "0.000", "1.2345", "-1", "1.", ".5", "1e3",
                          "2,5", "abc"}) {
    EXPECT_EQ(consumer::ParseMilli(bad, "x", 1'000'000).status().code(),
              StatusCode::kInvalidArgument)
        << bad;
  }
  EXPECT_THAT(consumer::ParseMilli("100001", "--a100", 100'000'000).status().message(),
              HasSubstr("too large"));
  EXPECT_THAT(consumer::ParseMilli("99999999999999999999", "x", 1000).status().message(),
              HasSubstr("too large"));
}

TEST(RequestFormParsingTest, PriorityClassNames) {
  EXPECT_EQ(*consumer::ParsePriorityClass("HIGH"), v1::PRIORITY_CLASS_HIGH);
  EXPECT_EQ(*consumer::ParsePriorityClass("normal"), v1::PRIORITY_CLASS_NORMAL);
  EXPECT_EQ(*consumer::ParsePriorityClass("Low"), v1::PRIORITY_CLASS_LOW);
  EXPECT_EQ(consumer::ParsePriorityClass("urgent").status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace computenet
