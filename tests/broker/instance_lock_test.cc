// InstanceLock: one broker per database file, released with its holder.
#include "core/instance_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::HasSubstr;

TEST(InstanceLockTest, SecondHolderIsRefusedNamingTheFirstUntilItLetsGo) {
  testing::TempDir dir;
  const std::string db = dir.File("broker.db");
  auto first = InstanceLock::Acquire(db);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ((*first)->path(), db + ".lock");

  auto second = InstanceLock::Acquire(db);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr("pid " + std::to_string(::getpid())));
  EXPECT_THAT(second.status().message(), HasSubstr("one broker per database"));

  // Another database is not affected.
  EXPECT_TRUE(InstanceLock::Acquire(dir.File("other.db")).ok());

  first->reset();
  EXPECT_TRUE(InstanceLock::Acquire(db).ok());
}

TEST(InstanceLockTest, UnwritableDirectoryIsUnavailable) {
  auto lock = InstanceLock::Acquire("/nonexistent-dir/broker.db");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace computenet::broker
