// Building blocks measured in the same run (see building_blocks.h).
#include "building_blocks.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "computenet/common/ed25519.h"

namespace computenet::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Rows per second inserted `rows_per_txn` at a time with a time-ordered
// key and a 200-byte payload (about a job row), WAL + synchronous=FULL.
double SqliteRate(const std::string& path, int rows_per_txn, double seconds) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
  try {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA journal_mode=WAL");
    db.exec("PRAGMA synchronous=FULL");
    db.exec("CREATE TABLE rows(id INTEGER PRIMARY KEY, payload BLOB)");
    SQLite::Statement insert(db, "INSERT INTO rows(id, payload) VALUES(?, ?)");
    const std::string payload(200, 'x');
    int64_t id = 0;
    uint64_t rows = 0;
    const auto start = Clock::now();
    while (Since(start) < seconds) {
      SQLite::Transaction txn(db);
      for (int i = 0; i < rows_per_txn; ++i) {
        insert.bind(1, ++id);
        insert.bind(2, payload.data(), static_cast<int>(payload.size()));
        insert.exec();
        insert.reset();
        ++rows;
      }
      txn.commit();
    }
    return static_cast<double>(rows) / Since(start);
  } catch (const SQLite::Exception& error) {
    std::fprintf(stderr, "loadgen: sqlite building block: %s\n", error.what());
    return 0;
  }
}

}  // namespace

BuildingBlocks MeasureBuildingBlocks(const std::string& dir, double seconds) {
  BuildingBlocks blocks;
  const std::string path = dir + "/building-blocks.db";
  blocks.sqlite_batched_rows_per_s = SqliteRate(path, 1000, seconds);
  blocks.sqlite_single_commits_per_s = SqliteRate(path, 1, seconds / 2);
  auto key = SigningKey::Generate();
  if (key.ok()) {
    const std::string message(200, 'r');  // about one usage record
    uint64_t signs = 0;
    std::string signature;
    auto start = Clock::now();
    while (Since(start) < seconds / 2) {
      auto signed_message = key->Sign(message);
      if (!signed_message.ok()) break;
      signature = *signed_message;
      ++signs;
    }
    blocks.ed25519_sign_per_s = static_cast<double>(signs) / Since(start);
    const VerifyingKey& verifying = key->verifying_key();
    uint64_t verifies = 0;
    start = Clock::now();
    while (Since(start) < seconds) {
      if (!verifying.Verify(message, signature).ok()) break;
      ++verifies;
    }
    blocks.ed25519_verify_per_s = static_cast<double>(verifies) / Since(start);
  }
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
  return blocks;
}

}  // namespace computenet::loadgen
