// The consumer's connection settings file (CLI and Python SDK).
#include "computenet/consumer/client_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace computenet::consumer {
namespace {

using ::testing::HasSubstr;

TEST(ClientConfigTest, PathsAreRelativeToTheFileAndEveryKeyIsChecked) {
  auto config = ParseClientConfig(
      "broker = \"tcp://hub:7700\"\nbroker_identity = \"broker.pub\"\n"
      "identity = \"keys/alice\"\nrequest_timeout = 2.5\nretries = 4\n",
      "/home/alice/.config/computenet/config.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->broker, "tcp://hub:7700");
  EXPECT_EQ(config->broker_identity, "/home/alice/.config/computenet/broker.pub");
  EXPECT_EQ(config->identity, "/home/alice/.config/computenet/keys/alice");
  EXPECT_EQ(config->request_timeout_s, 2.5);
  EXPECT_EQ(config->retries, 4);
  auto whole = ParseClientConfig("request_timeout = 5\nidentity = \"/k\"\n", "c.toml");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->request_timeout_s, 5.0);
  EXPECT_EQ(whole->identity, "/k");

  auto typo = ParseClientConfig("brokr = \"x\"\n", "c.toml");
  EXPECT_EQ(typo.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(typo.status().message(), HasSubstr("brokr"));
  auto retries = ParseClientConfig("\nretries = -1\n", "c.toml");
  EXPECT_THAT(retries.status().message(), HasSubstr("'retries' at line 2"));
  EXPECT_EQ(ParseClientConfig("request_timeout = 0.0\n", "c.toml").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseClientConfig("broker = 7\n", "c.toml").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseClientConfig("broker = [\n", "c.toml").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadClientConfig("/nonexistent/config.toml").status().code(),
            StatusCode::kNotFound);
}

}  // namespace
}  // namespace computenet::consumer
