// Secret env as consumers write it (issue 11): --secret-env NAME=VALUE,
// --secret-env-file NAME=PATH (owner-only files), and a job file's
// [secret_env] and [secret_env_files] tables.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "computenet/common/files.h"
#include "computenet/consumer/job_file.h"
#include "computenet/consumer/request_forms.h"
#include "test_support.h"

namespace computenet::consumer {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;

constexpr char kValue[] = "s3cr3t-forms-VALUE";

TEST(SecretEnvFormsTest, FlagsAddNamedValues) {
  v1::JobSpec spec;
  ASSERT_TRUE(AddSecretEnv(std::string("TOKEN=") + kValue, &spec).ok());
  ASSERT_TRUE(AddSecretEnv("WITH_EQ=a=b", &spec).ok());
  EXPECT_EQ(spec.secret_env().at("TOKEN"), kValue);
  EXPECT_EQ(spec.secret_env().at("WITH_EQ"), "a=b");
  for (const std::string& bad :
       {std::string(kValue), "=" + std::string(kValue),
        "9X=" + std::string(kValue), "TOKEN=" + std::string(kValue)}) {
    Status status = AddSecretEnv(bad, &spec);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr(kValue)));
  }
}

TEST(SecretEnvFormsTest, FilesMustBeOwnerOnly) {
  TempDir dir;
  const std::string tight = dir.File("tight");
  const std::string loose = dir.File("loose");
  ASSERT_TRUE(
      WriteFileAtomically(tight, std::string(kValue) + "\n", 0600).ok());
  ASSERT_TRUE(WriteFileAtomically(loose, kValue, 0644).ok());
  v1::JobSpec spec;
  ASSERT_TRUE(AddSecretEnvFile("TOKEN=" + tight, &spec).ok());
  EXPECT_EQ(spec.secret_env().at("TOKEN"), kValue) << "one newline dropped";
  Status refused = AddSecretEnvFile("OTHER=" + loose, &spec);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("chmod 600"));
  EXPECT_EQ(AddSecretEnvFile("OTHER=" + dir.File("missing"), &spec).code(),
            StatusCode::kNotFound);
  const std::string empty = dir.File("empty");
  ASSERT_TRUE(WriteFileAtomically(empty, "\n", 0600).ok());
  EXPECT_EQ(AddSecretEnvFile("OTHER=" + empty, &spec).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(AddSecretEnvFile("OTHER", &spec).code(),
            StatusCode::kInvalidArgument);
}

TEST(SecretEnvFormsTest, JobFileTablesAreRead) {
  TempDir dir;
  ASSERT_TRUE(
      WriteFileAtomically(dir.File("token.txt"), "from-file-value\n", 0600)
          .ok());
  const std::string job_path = dir.File("job.toml");
  {
    std::ofstream job(job_path);
    job << "command = [\"sh\", \"-c\", \"true\"]\nmax_duration_s = 60\n"
           "cards = 1\n[env]\nPLAIN = \"p\"\n[secret_env]\nTOKEN = \""
        << kValue << "\"\n[secret_env_files]\nHF_TOKEN = \"token.txt\"\n";
  }
  auto job = LoadJobFile(job_path);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->spec.secret_env().at("TOKEN"), kValue);
  EXPECT_EQ(job->spec.secret_env().at("HF_TOKEN"), "from-file-value")
      << "relative to the job file's directory";
  EXPECT_EQ(job->spec.env().at("PLAIN"), "p");
}

TEST(SecretEnvFormsTest, JobFileErrorsNameTheKey) {
  auto twice = ParseJobFile(
      "command = [\"true\"]\n[env]\nTOKEN = \"a\"\n[secret_env]\nTOKEN = "
      "\"b\"\n",
      "job.toml");
  EXPECT_EQ(twice.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.status().message()),
              HasSubstr("secret_env.TOKEN"));
  auto bad_name = ParseJobFile("[secret_env]\n\"1X\" = \"b\"\n", "job.toml");
  EXPECT_EQ(bad_name.status().code(), StatusCode::kInvalidArgument);
  auto not_table = ParseJobFile("secret_env = \"x\"\n", "job.toml");
  EXPECT_EQ(not_table.status().code(), StatusCode::kInvalidArgument);
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.File("loose"), "v", 0644).ok());
  {
    std::ofstream job(dir.File("job.toml"));
    job << "command = [\"true\"]\n[secret_env_files]\nTOKEN = \"loose\"\n";
  }
  auto loose = LoadJobFile(dir.File("job.toml"));
  EXPECT_EQ(loose.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(loose.status().message()),
              HasSubstr("secret_env_files.TOKEN"));
}

}  // namespace
}  // namespace computenet::consumer
