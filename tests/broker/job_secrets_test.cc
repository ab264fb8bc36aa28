// Secret job environment at the broker (issue 11): the rules of
// ValidateJobSpec, SecretBox (AES-256-GCM under secrets.key) and the
// store's sealed job_secrets table, on real SQLite files. Every test that
// stores a secret also reads the files' bytes: the value must not be there.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "computenet/common/files.h"
#include "computenet/common/secrets.h"
#include "core/imports.h"
#include "jobs/job_rules.h"
#include "jobs/store.h"
#include "test_support.h"

namespace computenet::broker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ShellJob;
using testing::TempDir;

constexpr char kValue[] = "s3cr3t-VALUE-unit-77";
constexpr int64_t kNowMs = 1'700'000'000'000;

// --- validation ----------------------------------------------------------

TEST(SecretEnvRulesTest, AcceptsNamesLikeEnvKeys) {
  v1::JobSpec spec = ShellJob("true");
  (*spec.mutable_secret_env())["HF_TOKEN"] = kValue;
  (*spec.mutable_secret_env())["_x1"] = "v";
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec).ToString();
}

TEST(SecretEnvRulesTest, RefusesBadEntriesWithoutQuotingTheValue) {
  struct Case {
    std::string name;
    std::string value;
    std::string expected;
  };
  const Case cases[] = {
      {"1ABC", kValue, "not a variable name"},
      {"A=B", kValue, "not a variable name"},
      {"", kValue, "not a variable name"},
      {"TOKEN", std::string(kValue) + std::string(1, '\0'), "NUL"},
      {"TOKEN", "", "empty value"},
      {"TOKEN", std::string(kValue) + std::string(kMaxSecretValueBytes, 'x'),
       "16 KiB"},
  };
  for (const auto& c : cases) {
    v1::JobSpec spec = ShellJob("true");
    (*spec.mutable_secret_env())[c.name] = c.value;
    Status status = ValidateJobSpec(spec);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.expected;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.expected));
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(kValue)));
  }
}

TEST(SecretEnvRulesTest, RefusesANameInBothEnvAndSecretEnv) {
  v1::JobSpec spec = ShellJob("true");
  (*spec.mutable_env())["TOKEN"] = "plain";
  (*spec.mutable_secret_env())["TOKEN"] = kValue;
  Status status = ValidateJobSpec(spec);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("both env and secret"));
}

TEST(SecretEnvRulesTest, CountsAndSizeAreBounded) {
  v1::JobSpec many = ShellJob("true");
  for (size_t i = 0; i <= kMaxSecretEnvEntries; ++i) {
    (*many.mutable_secret_env())["S" + std::to_string(i)] = "v";
  }
  EXPECT_EQ(ValidateJobSpec(many).code(), StatusCode::kInvalidArgument);
  // Each value within its own bound, together past the spec's 128 KiB.
  v1::JobSpec big = ShellJob("true");
  for (int i = 0; i < 9; ++i) {
    (*big.mutable_secret_env())["S" + std::to_string(i)] =
        std::string(kMaxSecretValueBytes, 'x');
  }
  Status status = ValidateJobSpec(big);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("KiB a job may take"));
}

TEST(SecretEnvRulesTest, MaskKeepsNamesOnly) {
  v1::JobSpec spec = ShellJob("true");
  (*spec.mutable_secret_env())["TOKEN"] = kValue;
  EXPECT_TRUE(HasSecretValues(spec));
  MaskSecretEnv(&spec);
  EXPECT_FALSE(HasSecretValues(spec));
  EXPECT_EQ(spec.secret_env().at("TOKEN"), kSecretMask);
}

// --- SecretBox -----------------------------------------------------------

TEST(SecretBoxTest, SealsUnderTheKeyFileAndOpensOnlyWithItsContext) {
  TempDir dir;
  const std::string path = dir.File("secrets.key");
  auto box = SecretBox::LoadOrCreate(path);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  auto sealed = (*box)->Seal(kValue, "b-1");
  ASSERT_TRUE(sealed.ok());
  EXPECT_THAT(*sealed, Not(HasSubstr(kValue)));
  // Two seals of one value differ (random nonce).
  EXPECT_NE(*sealed, *(*box)->Seal(kValue, "b-1"));

  // The key file read again (a restart) opens it.
  auto reloaded = SecretBox::LoadOrCreate(path);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  auto opened = (*reloaded)->Open(*sealed, "b-1");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, kValue);

  // Another job's context, a changed byte, another key: DATA_LOSS.
  EXPECT_EQ((*box)->Open(*sealed, "b-2").status().code(),
            StatusCode::kDataLoss);
  std::string changed = *sealed;
  changed[changed.size() / 2] ^= 1;
  EXPECT_EQ((*box)->Open(changed, "b-1").status().code(),
            StatusCode::kDataLoss);
  auto other = SecretBox::LoadOrCreate(dir.File("other.key"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ((*other)->Open(*sealed, "b-1").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ((*box)->Open("short", "b-1").status().code(),
            StatusCode::kDataLoss);
}

TEST(SecretBoxTest, RefusesAKeyFileOthersCanReadOrThatHoldsNoKey) {
  TempDir dir;
  const std::string loose = dir.File("loose.key");
  ASSERT_TRUE(
      WriteFileAtomically(loose, std::string(64, 'a') + "\n", 0644).ok());
  EXPECT_EQ(SecretBox::LoadOrCreate(loose).status().code(),
            StatusCode::kFailedPrecondition);
  const std::string junk = dir.File("junk.key");
  ASSERT_TRUE(WriteFileAtomically(junk, "not a key\n", 0600).ok());
  EXPECT_EQ(SecretBox::LoadOrCreate(junk).status().code(),
            StatusCode::kDataLoss);
}

// --- the store's sealed table ---------------------------------------------

class JobSecretsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto box = SecretBox::LoadOrCreate(dir_.File("secrets.key"));
    ASSERT_TRUE(box.ok()) << box.status().ToString();
    store_->SetSecretBox(*box);
  }

  static v1::JobInfo SecretJob(const std::string& consumer = "alice") {
    v1::JobInfo job;
    job.set_consumer(consumer);
    job.set_state(v1::JOB_STATE_QUEUED);
    job.set_created_ms(kNowMs);
    *job.mutable_spec() = ShellJob("true");
    (*job.mutable_spec()->mutable_secret_env())["TOKEN"] = kValue;
    (*job.mutable_spec()->mutable_secret_env())["OTHER"] = "second-value";
    return job;
  }

  // Every byte of the database and its WAL.
  std::string FileBytes() {
    std::string bytes;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      auto read = ReadFileToString(path_ + suffix, 1 << 30);
      if (read.ok()) bytes += *read;
    }
    return bytes;
  }

  TempDir dir_;
  std::string path_ = dir_.File("broker.db");
  std::unique_ptr<Store> store_;
};

TEST_F(JobSecretsStoreTest, RowKeepsNamesAndTheSealedTableTheValues) {
  bool duplicate = true;
  auto stored = store_->InsertJob("b", SecretJob(), "", &duplicate);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  // What the broker replies with and stores: names only.
  EXPECT_EQ(stored->spec().secret_env().at("TOKEN"), kSecretMask);
  auto row = store_->GetJob(stored->job_id());
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->spec().secret_env().at("TOKEN"), kSecretMask);
  EXPECT_EQ(row->spec().secret_env().at("OTHER"), kSecretMask);
  auto secrets = store_->JobSecrets(stored->job_id());
  ASSERT_TRUE(secrets.ok()) << secrets.status().ToString();
  EXPECT_EQ(secrets->at("TOKEN"), kValue);
  EXPECT_EQ(secrets->at("OTHER"), "second-value");
  EXPECT_THAT(FileBytes(), Not(HasSubstr(kValue)));
}

TEST_F(JobSecretsStoreTest, UpdatesNeverWriteValuesAndTheEndDeletesThem) {
  bool duplicate = true;
  auto stored = store_->InsertJob("b", SecretJob(), "", &duplicate);
  ASSERT_TRUE(stored.ok());
  // A copy carrying the values (an offer's spec) written back: masked.
  v1::JobInfo placed = *stored;
  placed.set_state(v1::JOB_STATE_PLACED);
  *placed.mutable_spec() = SecretJob().spec();
  ASSERT_TRUE(store_->UpdateJob(placed, kNowMs).ok());
  EXPECT_EQ(store_->GetJob(placed.job_id())->spec().secret_env().at("TOKEN"),
            kSecretMask);
  EXPECT_EQ(*store_->CountJobSecrets(), 1u);

  placed.set_state(v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(store_->UpdateJob(placed, kNowMs).ok());
  EXPECT_EQ(*store_->CountJobSecrets(), 0u);
  auto gone = store_->JobSecrets(placed.job_id());
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->empty());
  // secure_delete: not even the sealed bytes linger. (The plaintext never
  // was there.)
  EXPECT_THAT(FileBytes(), Not(HasSubstr(kValue)));
}

TEST_F(JobSecretsStoreTest, ForwardedJobsAreSealedToo) {
  v1::JobInfo forwarded = SecretJob();
  forwarded.set_job_id("north-7");
  forwarded.set_home_broker("north");
  ASSERT_TRUE(store_->InsertJobWithId(forwarded, kNowMs).ok());
  EXPECT_EQ(store_->GetJob("north-7")->spec().secret_env().at("TOKEN"),
            kSecretMask);
  EXPECT_EQ(store_->JobSecrets("north-7")->at("TOKEN"), kValue);
  EXPECT_THAT(FileBytes(), Not(HasSubstr(kValue)));
}

TEST_F(JobSecretsStoreTest, WithoutABoxSecretsAreRefusedAndNothingStored) {
  store_->SetSecretBox(nullptr);
  bool duplicate = true;
  auto stored = store_->InsertJob("b", SecretJob(), "", &duplicate);
  EXPECT_EQ(stored.status().code(), StatusCode::kFailedPrecondition);
  auto all = store_->ListJobs("", {}, 10);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  // A job without secrets is fine.
  v1::JobInfo plain = SecretJob();
  plain.mutable_spec()->clear_secret_env();
  EXPECT_TRUE(store_->InsertJob("b", plain, "", &duplicate).ok());
}

TEST_F(JobSecretsStoreTest, AnotherKeyCannotOpenThem) {
  bool duplicate = true;
  auto stored = store_->InsertJob("b", SecretJob(), "", &duplicate);
  ASSERT_TRUE(stored.ok());
  store_->SetSecretBox(*SecretBox::LoadOrCreate(dir_.File("another.key")));
  EXPECT_EQ(store_->JobSecrets(stored->job_id()).status().code(),
            StatusCode::kDataLoss);
}

TEST_F(JobSecretsStoreTest, SchemaIsVersionSeven) {
  auto version = store_->database().SchemaVersion("broker");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 7);
}

}  // namespace
}  // namespace computenet::broker
