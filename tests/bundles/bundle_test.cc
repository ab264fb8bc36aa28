// Bundles: deterministic packing, defensive unpacking, and the chunked,
// resumable, checked store.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "computenet/bundles/bundle_archive.h"
#include "computenet/bundles/bundle_store.h"
#include "computenet/common/clock.h"
#include "computenet/common/files.h"
#include "computenet/common/sha256.h"
#include "test_support.h"

namespace computenet::bundles {
namespace {

namespace fs = std::filesystem;
using computenet::testing::TempDir;

void Write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string Slurp(const std::string& path) {
  auto text = ReadFileToString(path, 1 << 26);
  return text.ok() ? *text : "<missing>";
}

// A tar with one entry of the given name and type, as a hostile sender
// would make it.
void WriteHostileTar(const std::string& path, const std::string& name,
                     mode_t type, const std::string& link = "") {
  archive* writer = archive_write_new();
  archive_write_set_format_pax_restricted(writer);
  archive_write_open_filename(writer, path.c_str());
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, name.c_str());
  archive_entry_set_filetype(entry, type);
  archive_entry_set_perm(entry, 0644);
  archive_entry_set_size(entry, type == AE_IFREG ? 4 : 0);
  if (!link.empty()) archive_entry_set_symlink(entry, link.c_str());
  archive_write_header(writer, entry);
  if (type == AE_IFREG) archive_write_data(writer, "evil", 4);
  archive_entry_free(entry);
  archive_write_close(writer);
  archive_write_free(writer);
}

TEST(BundleArchiveTest, PackingIsDeterministicAndRoundTrips) {
  TempDir dir;
  Write(dir.File("in/data/a.txt"), "alpha\n");
  Write(dir.File("in/data/sub/b.bin"), std::string(300'000, 'b'));
  Write(dir.File("in/train.py"), "print('hi')\n");
  ::chmod(dir.File("in/train.py").c_str(), 0755);
  auto first = PackPaths({dir.File("in/data/"), dir.File("in/train.py")},
                         dir.File("one.tar"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // Other times and another order give the same bytes.
  fs::last_write_time(dir.File("in/data/a.txt"),
                      fs::file_time_type::clock::now() - std::chrono::hours(5));
  auto second = PackPaths({dir.File("in/train.py"), dir.File("in/data")},
                          dir.File("two.tar"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->digest, second->digest);
  EXPECT_EQ(first->size, second->size);
  EXPECT_TRUE(IsDigest(first->digest));
  EXPECT_EQ(*FileDigest(dir.File("one.tar")), first->digest);

  ASSERT_TRUE(Unpack(dir.File("one.tar"), dir.File("out")).ok());
  EXPECT_EQ(Slurp(dir.File("out/data/a.txt")), "alpha\n");
  EXPECT_EQ(Slurp(dir.File("out/data/sub/b.bin")), std::string(300'000, 'b'));
  struct stat info {};
  ASSERT_EQ(::stat(dir.File("out/train.py").c_str(), &info), 0);
  EXPECT_NE(info.st_mode & 0100, 0u) << "the executable bit is kept";

  // A changed byte is a different bundle.
  Write(dir.File("in/data/a.txt"), "alphb\n");
  auto third = PackPaths({dir.File("in/data"), dir.File("in/train.py")},
                         dir.File("three.tar"));
  ASSERT_TRUE(third.ok());
  EXPECT_NE(third->digest, first->digest);
}

TEST(BundleArchiveTest, BadInputsAreRefusedWithReasons) {
  TempDir dir;
  EXPECT_EQ(PackPaths({dir.File("missing")}, dir.File("x.tar")).status().code(),
            StatusCode::kInvalidArgument);
  Write(dir.File("a/same"), "1");
  Write(dir.File("b/same"), "2");
  auto twice = PackPaths({dir.File("a/same"), dir.File("b/same")}, dir.File("x.tar"));
  EXPECT_EQ(twice.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.File("x.tar")));
  ArchiveLimits small;
  small.max_bytes = 100;
  Write(dir.File("big"), std::string(1000, 'x'));
  EXPECT_EQ(PackPaths({dir.File("big")}, dir.File("x.tar"), small).status().code(),
            StatusCode::kResourceExhausted);
  fs::create_directories(dir.File("loop"));
  fs::create_directory_symlink(dir.File("loop"), dir.File("loop/self"));
  EXPECT_EQ(PackPaths({dir.File("loop")}, dir.File("x.tar")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(BundleArchiveTest, UnpackKeepsAHostileArchiveInsideItsDirectory) {
  TempDir dir;
  fs::create_directories(dir.File("dest"));
  WriteHostileTar(dir.File("dots.tar"), "../escaped.txt", AE_IFREG);
  EXPECT_EQ(Unpack(dir.File("dots.tar"), dir.File("dest")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.File("escaped.txt")));
  WriteHostileTar(dir.File("abs.tar"), dir.File("absolute.txt"), AE_IFREG);
  EXPECT_EQ(Unpack(dir.File("abs.tar"), dir.File("dest")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.File("absolute.txt")));
  WriteHostileTar(dir.File("link.tar"), "innocent", AE_IFLNK, "/etc/passwd");
  EXPECT_EQ(Unpack(dir.File("link.tar"), dir.File("dest")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.File("dest/innocent")));
  Write(dir.File("garbage.tar"), std::string(5000, '\x07'));
  EXPECT_EQ(Unpack(dir.File("garbage.tar"), dir.File("dest")).code(),
            StatusCode::kDataLoss);
  // Over the unpacked-size limit.
  Write(dir.File("in/big"), std::string(10'000, 'x'));
  ASSERT_TRUE(PackPaths({dir.File("in/big")}, dir.File("big.tar")).ok());
  ArchiveLimits small;
  small.max_bytes = 1000;
  EXPECT_EQ(Unpack(dir.File("big.tar"), dir.File("dest2"), small).code(),
            StatusCode::kResourceExhausted);
}

class BundleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BundleStoreOptions options;
    options.dir = dir_.File("store");
    options.max_bundle_bytes = 1 << 20;
    auto store = BundleStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    data_.resize(600'000);
    for (size_t i = 0; i < data_.size(); ++i) data_[i] = static_cast<char>(i * 7);
    digest_ = HexEncode(Sha256(data_));
  }
  std::string_view Part(size_t offset, size_t size) const {
    return std::string_view(data_).substr(offset, size);
  }
  TempDir dir_;
  std::unique_ptr<BundleStore> store_;
  std::string data_;
  std::string digest_;
};

TEST_F(BundleStoreTest, ChunksResumeRepeatAndFinishChecked) {
  const uint64_t total = data_.size();
  auto progress = store_->Append(digest_, total, 0, Part(0, kChunkBytes));
  ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  EXPECT_EQ(progress->have, kChunkBytes);
  EXPECT_FALSE(progress->complete);
  // A repeat changes nothing; a gap says where to go on.
  EXPECT_EQ(store_->Append(digest_, total, 0, Part(0, kChunkBytes))->have, kChunkBytes);
  EXPECT_EQ(store_->Append(digest_, total, 2 * kChunkBytes, Part(0, 10)).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(store_->Append(digest_, total + 1, kChunkBytes, Part(0, 10)).status().code(),
            StatusCode::kInvalidArgument);
  // A restart of the owner: the part is picked up where it was.
  BundleStoreOptions options;
  options.dir = dir_.File("store");
  options.max_bundle_bytes = 1 << 20;
  store_ = std::move(*BundleStore::Open(options));
  EXPECT_EQ(store_->Stat(digest_)->have, kChunkBytes);
  uint64_t offset = kChunkBytes;
  while (offset < total) {
    const size_t size = std::min<uint64_t>(kChunkBytes, total - offset);
    progress = store_->Append(digest_, total, offset, Part(offset, size));
    ASSERT_TRUE(progress.ok()) << progress.status().ToString();
    offset += size;
  }
  EXPECT_TRUE(progress->complete);
  EXPECT_TRUE(store_->Stat(digest_)->complete);
  EXPECT_EQ(*store_->Read(digest_, 100, 50), data_.substr(100, 50));
  EXPECT_EQ(store_->Read(digest_, total + 1, 5).status().code(), StatusCode::kOutOfRange);
}

TEST_F(BundleStoreTest, BytesThatDoNotHashToTheDigestNeverBecomeABundle) {
  const std::string wrong = std::string(63, '0') + "f";
  const std::string small = data_.substr(0, 1000);
  auto progress = store_->Append(wrong, small.size(), 0, small);
  EXPECT_EQ(progress.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(progress.status().message().find(HexEncode(Sha256(small))), std::string::npos);
  EXPECT_FALSE(store_->Stat(wrong)->complete);
  EXPECT_EQ(store_->Stat(wrong)->have, 0u);
  EXPECT_EQ(store_->Read(wrong, 0, 10).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->BytesStored(), 0u);
  // Over the store's limit, or a malformed digest: refused before storing.
  EXPECT_EQ(store_->Append(digest_, 2 << 20, 0, "x").status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(store_->Append("../../etc/passwd", 10, 0, "x").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(BundleStoreTest, NotesOutliveTheStoreAndCountBytes) {
  const std::string small = data_.substr(0, 1000);
  const std::string digest = HexEncode(Sha256(small));
  ASSERT_TRUE(store_->Append(digest, small.size(), 0, small)->complete);
  ASSERT_TRUE(store_->AddNote(digest, "owner alice").ok());
  ASSERT_TRUE(store_->AddNote(digest, "owner alice").ok());  // once
  EXPECT_EQ(store_->AddNote(digest, "owner\nforged").code(), StatusCode::kInvalidArgument);
  BundleStoreOptions options;
  options.dir = dir_.File("store");
  store_ = std::move(*BundleStore::Open(options));
  EXPECT_TRUE(store_->HasNote(digest, "owner alice"));
  EXPECT_FALSE(store_->HasNote(digest, "owner bob"));
  EXPECT_EQ(store_->Notes(digest).size(), 1u);
  EXPECT_EQ(store_->BytesWithNote("owner alice"), small.size());
  EXPECT_EQ(store_->BytesWithNote("owner bob"), 0u);
}

TEST_F(BundleStoreTest, UnusedBundlesAndStaleUploadsAreSweptUsedOnesStay) {
  const std::string kept = data_.substr(0, 1000);
  const std::string gone = data_.substr(1000, 1000);
  const std::string kept_digest = HexEncode(Sha256(kept));
  const std::string gone_digest = HexEncode(Sha256(gone));
  ASSERT_TRUE(store_->Append(kept_digest, kept.size(), 0, kept)->complete);
  ASSERT_TRUE(store_->Append(gone_digest, gone.size(), 0, gone)->complete);
  ASSERT_TRUE(store_->AddNote(gone_digest, "owner alice").ok());
  ASSERT_TRUE(store_->Append(digest_, data_.size(), 0, Part(0, 100)).ok());
  // Everything "written" a day ago; then one bundle is used.
  const int64_t now_ms = SystemClock::Shared()->NowMs();
  for (const auto& entry : fs::directory_iterator(dir_.File("store"))) {
    struct timespec old[2] = {{(now_ms / 1000) - 86'400, 0},
                              {(now_ms / 1000) - 86'400, 0}};
    ::utimensat(AT_FDCWD, entry.path().c_str(), old, 0);
  }
  store_->Touch(kept_digest);
  const auto removed = store_->RemoveUnusedSince(now_ms - 3'600'000);
  EXPECT_EQ(removed, std::vector<std::string>{gone_digest});
  EXPECT_TRUE(store_->Stat(kept_digest)->complete);
  EXPECT_FALSE(store_->Stat(gone_digest)->complete);
  EXPECT_TRUE(store_->Notes(gone_digest).empty());
  EXPECT_EQ(store_->Stat(digest_)->have, 0u) << "the stale upload went too";
}

}  // namespace
}  // namespace computenet::bundles
