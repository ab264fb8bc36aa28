// storage::Database: nested transactions, group commit (a failed batch
// leaves nothing visible), migrations per owner, adoption of pre-owner files.
#include "computenet/storage/database.h"

#include <gtest/gtest.h>

#include <array>

#include "test_support.h"

namespace computenet::storage {
namespace {

using computenet::testing::TempDir;

constexpr const char* kWidgetsV1[] = {
    "CREATE TABLE widgets(id INTEGER PRIMARY KEY, name TEXT NOT NULL)"};
constexpr const char* kWidgetsV2[] = {
    "ALTER TABLE widgets ADD COLUMN colour TEXT NOT NULL DEFAULT ''"};
constexpr Migration kWidgets[] = {{1, kWidgetsV1}, {2, kWidgetsV2}};

std::unique_ptr<Database> MustOpen(const std::string& path,
                                   DatabaseOptions options = {}) {
  auto db = Database::Open(path, options);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(*db);
}

int64_t Count(Database& db) {
  return db.QueryInt("SELECT COUNT(*) FROM widgets").value();
}

Status Insert(Database& db, const std::string& name) {
  return db.Run([&]() -> Status {
    auto insert = db.Prepare("INSERT INTO widgets(name) VALUES(?)");
    insert->bind(1, name);
    insert->exec();
    return OkStatus();
  });
}

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = MustOpen(path_);
    ASSERT_TRUE(db_->Migrate("widgets", kWidgets).ok());
  }
  TempDir dir_;
  std::string path_ = dir_.File("test.db");
  std::unique_ptr<Database> db_;
};

TEST_F(DatabaseTest, MigratesEachOwnerToItsLastStep) {
  EXPECT_EQ(db_->SchemaVersion("widgets").value(), 2);
  EXPECT_EQ(db_->SchemaVersion("gadgets").value(), 0);
  // Running again is a no-op; a newer file is refused.
  EXPECT_TRUE(db_->Migrate("widgets", kWidgets).ok());
  const std::array<Migration, 1> older = {Migration{1, kWidgetsV1}};
  EXPECT_EQ(db_->Migrate("widgets", older).code(), StatusCode::kDataLoss);
}

TEST_F(DatabaseTest, ReadOnlyFileBehindIsFailedPrecondition) {
  db_.reset();
  DatabaseOptions read_only;
  read_only.read_only = true;
  auto reader = MustOpen(path_, read_only);
  EXPECT_TRUE(reader->Migrate("widgets", kWidgets).ok());
  const Migration newer[] = {{1, kWidgetsV1}, {2, kWidgetsV2}, {3, {}}};
  EXPECT_EQ(reader->Migrate("widgets", newer).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_FALSE(Insert(*reader, "x").ok());
}

TEST_F(DatabaseTest, InnerFailureUndoesOnlyItsOwnWrites) {
  Status outer = db_->RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(Insert(*db_, "kept"));
    Status inner = db_->RunInTransaction([&]() -> Status {
      CN_RETURN_IF_ERROR(Insert(*db_, "undone"));
      return AbortedError("inner gives up");
    });
    EXPECT_EQ(inner.code(), StatusCode::kAborted);
    return OkStatus();
  });
  ASSERT_TRUE(outer.ok()) << outer.ToString();
  EXPECT_EQ(Count(*db_), 1);
}

TEST_F(DatabaseTest, SqliteErrorsBecomeStatusesAndRollBack) {
  Status status = db_->RunInTransaction([&]() -> Status {
    CN_RETURN_IF_ERROR(Insert(*db_, "a"));
    return db_->Exec("INSERT INTO no_such_table VALUES(1)");
  });
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_EQ(Count(*db_), 0);
}

TEST_F(DatabaseTest, BatchIsInvisibleToOthersUntilCommitted) {
  auto other = MustOpen(path_);
  ASSERT_TRUE(db_->BeginBatch().ok());
  ASSERT_TRUE(Insert(*db_, "one").ok());
  ASSERT_TRUE(db_->RunInTransaction([&] { return Insert(*db_, "two"); }).ok());
  EXPECT_EQ(Count(*db_), 2);     // the batch sees its own writes
  EXPECT_EQ(Count(*other), 0);   // no one else does yet
  ASSERT_TRUE(db_->CommitBatch().ok());
  EXPECT_FALSE(db_->batch_open());
  EXPECT_EQ(Count(*other), 2);
}

TEST_F(DatabaseTest, FailedBatchLeavesNothingAndIsRetryable) {
  ASSERT_TRUE(Insert(*db_, "before").ok());
  ASSERT_TRUE(db_->BeginBatch().ok());
  ASSERT_TRUE(Insert(*db_, "lost-1").ok());
  ASSERT_TRUE(db_->RunInTransaction([&] { return Insert(*db_, "lost-2"); }).ok());
  db_->FailNextCommitForTesting();
  Status committed = db_->CommitBatch();
  EXPECT_EQ(committed.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(db_->batch_open());
  EXPECT_EQ(Count(*db_), 1);
  auto reopened = MustOpen(path_);
  EXPECT_EQ(Count(*reopened), 1);
  // The connection works on: the next batch commits.
  ASSERT_TRUE(db_->BeginBatch().ok());
  ASSERT_TRUE(Insert(*db_, "after").ok());
  ASSERT_TRUE(db_->CommitBatch().ok());
  EXPECT_EQ(Count(*reopened), 2);
}

TEST_F(DatabaseTest, BatchCannotOpenInsideATransaction) {
  Status status = db_->RunInTransaction([&] { return db_->BeginBatch(); });
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
}

TEST(DatabaseLegacyTest, PreOwnerFileIsAdoptedAtItsVersion) {
  TempDir dir;
  const std::string path = dir.File("legacy.db");
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("PRAGMA user_version=2");
  }
  auto db = MustOpen(path);
  EXPECT_EQ(db->SchemaVersion("broker").value(), 2);
  EXPECT_EQ(db->SchemaVersion("ledger").value(), 2);
  EXPECT_EQ(db->SchemaVersion("widgets").value(), 0);
  // Marked, so a binary from before owners refuses it instead of misreading.
  EXPECT_EQ(db->QueryInt("PRAGMA user_version").value(), 100);
}

TEST_F(DatabaseTest, MetaRoundTrips) {
  EXPECT_FALSE(db_->GetMeta("k").value().has_value());
  ASSERT_TRUE(db_->SetMeta("k", "v1").ok());
  ASSERT_TRUE(db_->SetMeta("k", "v2").ok());
  EXPECT_EQ(db_->GetMeta("k").value().value(), "v2");
}

}  // namespace
}  // namespace computenet::storage
