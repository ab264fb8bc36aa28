// BrokerConfig: the operator's TOML file, here its [preemption] table:
// defaults, values read, and errors that name the key.
#include "computenet/broker/broker_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::HasSubstr;

constexpr char kRequired[] =
    "broker_id = \"hub\"\nregion = \"north\"\n"
    "endpoint = \"tcp://127.0.0.1:0\"\ndatabase = \"hub.db\"\nkeys = \"keys\"\n";

StatusOr<BrokerConfig> Load(testing::TempDir& dir, const std::string& extra) {
  const std::string path = dir.File("broker.toml");
  std::ofstream(path) << kRequired << extra;
  return LoadBrokerConfig(path);
}

TEST(BrokerConfigTest, PreemptionDefaultsWhenTheTableIsAbsent) {
  testing::TempDir dir;
  auto config = Load(dir, "");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->options.priority_preemption);
  EXPECT_EQ(config->options.preemption_grace_ms, 30'000);
  EXPECT_EQ(config->options.preemption.protect_after, 2u);
  EXPECT_EQ(config->options.preemption.protection_ms, 3600'000);
}

TEST(BrokerConfigTest, PreemptionTableIsRead) {
  testing::TempDir dir;
  auto config = Load(dir,
                     "[preemption]\nenabled = false\ngrace_ms = 5000\n"
                     "protect_after = 3\nprotection_s = 600\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_FALSE(config->options.priority_preemption);
  EXPECT_EQ(config->options.preemption_grace_ms, 5000);
  EXPECT_EQ(config->options.preemption.protect_after, 3u);
  EXPECT_EQ(config->options.preemption.protection_ms, 600'000);
}

TEST(BrokerConfigTest, LostJobTimeoutIsASetting) {
  testing::TempDir dir;
  auto config = Load(dir, "lost_job_timeout_ms = 45000\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->options.lost_job_timeout_ms, 45'000);
  auto defaulted = Load(dir, "");
  EXPECT_EQ(defaulted->options.lost_job_timeout_ms, 10 * 60 * 1000);
  EXPECT_THAT(Load(dir, "lost_job_timeout_ms = 5\n").status().message(),
              HasSubstr("lost_job_timeout_ms must be"));
}

TEST(BrokerConfigTest, BadPreemptionSettingsNameTheKey) {
  testing::TempDir dir;
  auto unknown = Load(dir, "[preemption]\ngrace = 5\n");
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("grace"));
  auto negative = Load(dir, "[preemption]\ngrace_ms = -1\n");
  EXPECT_THAT(negative.status().message(), HasSubstr("grace_ms must be"));
  auto huge = Load(dir, "[preemption]\nprotection_s = 99999999999\n");
  EXPECT_THAT(huge.status().message(), HasSubstr("protection_s must be"));
  // Wrong types and unknown keys name the key, what it must be and the line
  // (the required keys take lines 1-5).
  auto wrong_type = Load(dir, "[preemption]\nenabled = \"yes\"\n");
  EXPECT_THAT(wrong_type.status().message(),
              HasSubstr("'enabled' at line 7 must be true or false"));
  auto wrong_int = Load(dir, "heartbeat_ms = \"fast\"\n");
  EXPECT_THAT(wrong_int.status().message(),
              HasSubstr("'heartbeat_ms' at line 6 must be an integer"));
  auto typo = Load(dir, "\nheartbeat = 5\n");
  EXPECT_THAT(typo.status().message(), HasSubstr("unknown key 'heartbeat' at line 7"));
  auto not_table = Load(dir, "preemption = 3\n");
  EXPECT_THAT(not_table.status().message(), HasSubstr("not a table"));
}

}  // namespace
}  // namespace computenet::broker
