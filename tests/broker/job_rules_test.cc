// Job rules: spec and registration validation, and the state helpers.
#include "core/imports.h"
#include "jobs/job_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::HasSubstr;
using testing::MakeNode;
using testing::MakeRegistration;
using testing::ShellJob;

void ExpectInvalid(const v1::JobSpec& spec, const std::string& mentions) {
  Status status = ValidateJobSpec(spec);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr(mentions));
}

void ExpectInvalid(const v1::RegisterProvider& registration,
                   const std::string& mentions) {
  Status status = ValidateRegistration(registration);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr(mentions));
}

TEST(ValidateJobSpecTest, AcceptsGoodSpec) {
  v1::JobSpec spec = ShellJob("echo hi", 2, {"A800", "H100"});
  spec.set_name("train");
  (*spec.mutable_env())["EPOCHS"] = "3";
  spec.set_nodes(4);
  spec.set_max_price_per_card_hour(2000);
  Status status = ValidateJobSpec(spec);
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST(ValidateJobSpecTest, AcceptsLimits) {
  v1::JobSpec spec = ShellJob("true", kMaxCardsPerNode);
  spec.set_nodes(kMaxNodes);
  spec.set_max_duration_s(kMaxDurationSeconds);
  spec.set_max_price_per_card_hour(kMaxPricePerCardHour);
  spec.set_name(std::string(128, 'n'));
  for (size_t i = 0; i < kMaxEnvEntries; ++i) {
    (*spec.mutable_env())["V" + std::to_string(i)] = "x";
  }
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec).ToString();
}

TEST(ValidateJobSpecTest, RejectsEmptyCommand) {
  v1::JobSpec spec = ShellJob("true");
  spec.clear_command();
  ExpectInvalid(spec, "command");
  spec.add_command("");
  ExpectInvalid(spec, "command[0]");
}

TEST(ValidateJobSpecTest, RejectsTooManyOrTooLongArguments) {
  v1::JobSpec spec = ShellJob("true");
  while (static_cast<size_t>(spec.command_size()) <= kMaxCommandArgs) {
    spec.add_command("arg");
  }
  ExpectInvalid(spec, "arguments");
  v1::JobSpec long_arg = ShellJob(std::string(kMaxArgBytes + 1, 'x'));
  ExpectInvalid(long_arg, "4 KiB");
}

// Hostile-input finding: 255 arguments of 4 KiB passed, and every message
// carrying the job then exceeded the 1 MiB frame limit.
TEST(ValidateJobSpecTest, RejectsASpecNoMessageCouldCarry) {
  v1::JobSpec spec = ShellJob("true");
  while (static_cast<size_t>(spec.command_size()) < kMaxCommandArgs) {
    spec.add_command(std::string(kMaxArgBytes, 'a'));
  }
  ExpectInvalid(spec, "KiB a job may take");
  // Just under the total is fine.
  v1::JobSpec fits = ShellJob("true");
  while (fits.ByteSizeLong() + kMaxArgBytes + 8 < kMaxJobSpecBytes) {
    fits.add_command(std::string(kMaxArgBytes, 'a'));
  }
  EXPECT_TRUE(ValidateJobSpec(fits).ok()) << ValidateJobSpec(fits).ToString();
}

TEST(ValidateJobSpecTest, RejectsNulBytesAndControlCharactersInNames) {
  v1::JobSpec arg = ShellJob("true");
  arg.add_command(std::string("a\0b", 3));
  ExpectInvalid(arg, "NUL");
  v1::JobSpec value = ShellJob("true");
  (*value.mutable_env())["K"] = std::string("a\0b", 3);
  ExpectInvalid(value, "bad env entry");
  v1::JobSpec name = ShellJob("true");
  name.set_name("train\nFAKE LOG LINE");
  ExpectInvalid(name, "control character");
  v1::JobSpec unicode = ShellJob("true");
  unicode.set_name("训练-1");
  EXPECT_TRUE(ValidateJobSpec(unicode).ok());
}

TEST(ValidateJobSpecTest, ABadEnvKeyIsQuotedShortAndEscaped) {
  v1::JobSpec spec = ShellJob("true");
  (*spec.mutable_env())[std::string(100000, 'k') + "\n="] = "v";
  Status status = ValidateJobSpec(spec);
  ASSERT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_LT(status.message().size(), 200u);
  EXPECT_EQ(status.message().find('\n'), std::string::npos);
}

TEST(ValidateJobSpecTest, RejectsZeroCards) {
  ExpectInvalid(ShellJob("true", 0), "cards_per_node");
}

TEST(ValidateJobSpecTest, RejectsTooManyCards) {
  ExpectInvalid(ShellJob("true", kMaxCardsPerNode + 1), "cards_per_node");
}

TEST(ValidateJobSpecTest, RejectsTooManyNodes) {
  v1::JobSpec spec = ShellJob("true");
  spec.set_nodes(kMaxNodes + 1);
  ExpectInvalid(spec, "nodes");
}

TEST(ValidateJobSpecTest, RejectsBadDuration) {
  v1::JobSpec spec = ShellJob("true");
  spec.set_max_duration_s(0);
  ExpectInvalid(spec, "max_duration_s");
  spec.set_max_duration_s(kMaxDurationSeconds + 1);
  ExpectInvalid(spec, "max_duration_s");
}

TEST(ValidateJobSpecTest, RejectsBadPriceCeiling) {
  v1::JobSpec spec = ShellJob("true");
  spec.set_max_price_per_card_hour(-1);
  ExpectInvalid(spec, "max_price_per_card_hour");
  spec.set_max_price_per_card_hour(kMaxPricePerCardHour + 1);
  ExpectInvalid(spec, "max_price_per_card_hour");
}

TEST(ValidateJobSpecTest, RejectsOversizeEnv) {
  v1::JobSpec spec = ShellJob("true");
  for (size_t i = 0; i <= kMaxEnvEntries; ++i) {
    (*spec.mutable_env())["V" + std::to_string(i)] = "x";
  }
  ExpectInvalid(spec, "env");
}

TEST(ValidateJobSpecTest, RejectsBadEnvEntries) {
  v1::JobSpec empty_key = ShellJob("true");
  (*empty_key.mutable_env())[""] = "x";
  ExpectInvalid(empty_key, "env");

  v1::JobSpec equals_in_key = ShellJob("true");
  (*equals_in_key.mutable_env())["A=B"] = "x";
  ExpectInvalid(equals_in_key, "A=B");

  v1::JobSpec long_value = ShellJob("true");
  (*long_value.mutable_env())["BIG"] = std::string(kMaxArgBytes + 1, 'v');
  ExpectInvalid(long_value, "BIG");
}

TEST(ValidateJobSpecTest, RejectsLongNameAndBadModels) {
  v1::JobSpec long_name = ShellJob("true");
  long_name.set_name(std::string(129, 'n'));
  ExpectInvalid(long_name, "name");

  ExpectInvalid(ShellJob("true", 1, {""}), "model");
  ExpectInvalid(ShellJob("true", 1, {std::string(65, 'm')}), "model");
}

// --- registrations -------------------------------------------------------------

v1::RegisterProvider GoodRegistration() {
  return MakeRegistration("zhangbei-1",
                          {MakeNode("node-1", "ib-1", "A800", 8),
                           MakeNode("node-2", "ib-1", "H100", 4)},
                          {{"A800", 1500}, {"H100", 3000}});
}

TEST(ValidateRegistrationTest, AcceptsGoodRegistration) {
  Status status = ValidateRegistration(GoodRegistration());
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST(ValidateRegistrationTest, AcceptsExtraPricesAndZeroPrice) {
  v1::RegisterProvider registration = GoodRegistration();
  auto* extra = registration.add_prices();
  extra->set_model("MI300X");  // priced but not installed: harmless
  extra->set_per_card_hour(0);
  EXPECT_TRUE(ValidateRegistration(registration).ok());
}

TEST(ValidateRegistrationTest, RejectsNoNodes) {
  v1::RegisterProvider registration = GoodRegistration();
  registration.clear_nodes();
  ExpectInvalid(registration, "nodes");
}

TEST(ValidateRegistrationTest, RejectsDuplicateNodeNames) {
  v1::RegisterProvider registration = GoodRegistration();
  *registration.add_nodes() = MakeNode("node-1", "ib-2", "A800", 2);
  ExpectInvalid(registration, "duplicate node 'node-1'");
}

TEST(ValidateRegistrationTest, RejectsBadNodeName) {
  v1::RegisterProvider registration = GoodRegistration();
  registration.mutable_nodes(0)->set_name("node 1");
  ExpectInvalid(registration, "node name");
}

TEST(ValidateRegistrationTest, RejectsModelWithoutPrice) {
  v1::RegisterProvider registration = GoodRegistration();
  registration.mutable_prices()->RemoveLast();  // drops H100
  ExpectInvalid(registration, "no price for model H100");
}

TEST(ValidateRegistrationTest, RejectsBadCurrency) {
  for (const char* currency : {"", "CN", "CNYY"}) {
    v1::RegisterProvider registration = GoodRegistration();
    registration.set_currency(currency);
    ExpectInvalid(registration, "currency");
  }
}

TEST(ValidateRegistrationTest, RejectsZeroCountAccelerator) {
  v1::RegisterProvider registration = GoodRegistration();
  registration.mutable_nodes(1)->mutable_accelerators(0)->set_count(0);
  ExpectInvalid(registration, "zero-count accelerator on node node-2");
}

TEST(ValidateRegistrationTest, RejectsTooManyCardsOnANode) {
  v1::RegisterProvider registration = GoodRegistration();
  auto* more = registration.mutable_nodes(0)->add_accelerators();
  more->set_model("A800");
  more->set_count(kMaxCardsPerNode);  // 8 + 64
  ExpectInvalid(registration, "more than 64 cards");
}

// Hostile-input finding: two entries of 2^31 cards each summed to 0 in 32
// bits, passed, and the stored registration crashed the broker on every
// restart.
TEST(ValidateRegistrationTest, CardCountsThatWrapIn32BitsAreRefused) {
  v1::RegisterProvider registration = GoodRegistration();
  v1::Node* node = registration.mutable_nodes(0);
  node->clear_accelerators();
  for (int i = 0; i < 2; ++i) {
    auto* accelerator = node->add_accelerators();
    accelerator->set_model("A800");
    accelerator->set_count(uint32_t{1} << 31);
  }
  ExpectInvalid(registration, "more than 64 cards");
  node->mutable_accelerators(1)->set_count((uint32_t{1} << 31) + 1);
  ExpectInvalid(registration, "more than 64 cards");  // 2^32 + 1
}

TEST(ValidateRegistrationTest, HostAndCardFiguresAreBounded) {
  v1::RegisterProvider cpu = GoodRegistration();
  cpu.mutable_nodes(0)->set_cpu_cores(kMaxNodeCpuCores + 1);
  ExpectInvalid(cpu, "CPU cores");
  v1::RegisterProvider memory = GoodRegistration();
  memory.mutable_nodes(0)->set_memory_mib(UINT64_MAX);
  ExpectInvalid(memory, "memory_mib");
  v1::RegisterProvider card = GoodRegistration();
  card.mutable_nodes(0)->mutable_accelerators(0)->set_memory_mib(UINT64_MAX);
  ExpectInvalid(card, "accelerator figures");
  v1::RegisterProvider gflops = GoodRegistration();
  gflops.mutable_nodes(0)->mutable_accelerators(0)->set_measured_dense_gflops(
      kMaxCardDenseGflops + 1);
  ExpectInvalid(gflops, "accelerator figures");
  v1::RegisterProvider at_limits = GoodRegistration();
  at_limits.mutable_nodes(0)->set_cpu_cores(kMaxNodeCpuCores);
  at_limits.mutable_nodes(0)->set_memory_mib(kMaxNodeMemoryMib);
  EXPECT_TRUE(ValidateRegistration(at_limits).ok());
}

TEST(ValidateRegistrationTest, RejectsNegativePrice) {
  v1::RegisterProvider registration = GoodRegistration();
  registration.mutable_prices(0)->set_per_card_hour(-1);
  ExpectInvalid(registration, "price");
}

TEST(ValidateRegistrationTest, RejectsASitePolicyThatCannotBeMeant) {
  v1::RegisterProvider registration = GoodRegistration();
  registration.mutable_policy()->set_min_duration_s(3600);
  registration.mutable_policy()->set_max_duration_s(60);
  ExpectInvalid(registration, "above max_duration_s");
  v1::RegisterProvider fine = GoodRegistration();
  fine.mutable_policy()->add_denied_organizations("org-x");
  EXPECT_TRUE(ValidateRegistration(fine).ok());
}

TEST(ValidateRegistrationTest, RejectsMissingSiteOrRegion) {
  v1::RegisterProvider no_site = GoodRegistration();
  no_site.clear_site();
  ExpectInvalid(no_site, "site");
  v1::RegisterProvider no_region = GoodRegistration();
  no_region.clear_region();
  ExpectInvalid(no_region, "region");
}

TEST(ValidateRegistrationTest, RejectsEmptyModelName) {
  v1::RegisterProvider registration = GoodRegistration();
  registration.mutable_nodes(0)->mutable_accelerators(0)->set_model("");
  ExpectInvalid(registration, "model");
}

// --- state helpers ---------------------------------------------------------------

TEST(JobStateTest, TerminalStates) {
  EXPECT_TRUE(IsTerminal(v1::JOB_STATE_SUCCEEDED));
  EXPECT_TRUE(IsTerminal(v1::JOB_STATE_FAILED));
  EXPECT_TRUE(IsTerminal(v1::JOB_STATE_CANCELLED));
  EXPECT_FALSE(IsTerminal(v1::JOB_STATE_QUEUED));
  EXPECT_FALSE(IsTerminal(v1::JOB_STATE_PLACED));
  EXPECT_FALSE(IsTerminal(v1::JOB_STATE_RUNNING));
  EXPECT_FALSE(IsTerminal(v1::JOB_STATE_UNSPECIFIED));
}

TEST(JobStateTest, Names) {
  EXPECT_EQ(JobStateName(v1::JOB_STATE_QUEUED), "queued");
  EXPECT_EQ(JobStateName(v1::JOB_STATE_PLACED), "placed");
  EXPECT_EQ(JobStateName(v1::JOB_STATE_RUNNING), "running");
  EXPECT_EQ(JobStateName(v1::JOB_STATE_SUCCEEDED), "succeeded");
  EXPECT_EQ(JobStateName(v1::JOB_STATE_FAILED), "failed");
  EXPECT_EQ(JobStateName(v1::JOB_STATE_CANCELLED), "cancelled");
  EXPECT_EQ(JobStateName(v1::JOB_STATE_UNSPECIFIED), "unspecified");
}

TEST(JobStateTest, TotalCardsCountsEveryAssignment) {
  v1::JobInfo job;
  EXPECT_EQ(TotalCards(job), 0u);
  auto* a = job.add_assignments();
  a->set_node("n1");
  a->add_device_indices(0);
  a->add_device_indices(1);
  auto* b = job.add_assignments();
  b->set_node("n2");
  b->add_device_indices(5);
  EXPECT_EQ(TotalCards(job), 3u);
}

}  // namespace
}  // namespace computenet::broker
