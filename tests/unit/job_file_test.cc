// Job files (consumer-sdk job_file.h): every request form, and errors that
// name the file, the key and its line.
#include "computenet/consumer/job_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "test_support.h"

namespace computenet::consumer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(JobFileTest, EveryRequestFormIsRead) {
  auto job = ParseJobFile(R"(
name = "finetune"
command = ["python3", "train.py", "--epochs", "3"]
max_duration_s = 7200
models = ["A800", "H800|A800"]
cards = 8
nodes = 2
min_memory_mib = 81920
vendor_classes = "nvidia|domestic"
cpu_milli_per_card = 8000
host_memory_mib_per_card = 65536
regions = ["north"]
prefer_regions = ["east"]
exclude_providers = ["site-x"]
max_price = 3000
max_price_per_a100_hour = 2500
preemptible = true
priority = "high"
max_attempts = 5
network_access = true
idempotency_key = "run-1"
[env]
HF_HOME = "/scratch/hf"
)",
                          "job.toml");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const v1::JobSpec& spec = job->spec;
  EXPECT_EQ(spec.name(), "finetune");
  EXPECT_THAT(spec.command(),
              ElementsAre("python3", "train.py", "--epochs", "3"));
  EXPECT_EQ(spec.max_duration_s(), 7200u);
  EXPECT_THAT(spec.accelerator_models(), ElementsAre("A800", "H800"));
  EXPECT_EQ(spec.cards_per_node(), 8u);
  EXPECT_EQ(spec.nodes(), 2u);
  EXPECT_EQ(spec.min_memory_mib(), 81920u);
  EXPECT_THAT(spec.vendor_classes(), ElementsAre("nvidia", "domestic"));
  EXPECT_EQ(spec.cpu_milli_per_card(), 8000u);
  EXPECT_EQ(spec.host_memory_mib_per_card(), 65536u);
  EXPECT_THAT(spec.allowed_regions(), ElementsAre("north"));
  EXPECT_THAT(spec.preferred_regions(), ElementsAre("east"));
  EXPECT_THAT(spec.excluded_providers(), ElementsAre("site-x"));
  EXPECT_EQ(spec.max_price_per_card_hour(), 3000);
  EXPECT_EQ(spec.max_price_per_a100_hour(), 2500);
  EXPECT_TRUE(spec.preemptible());
  EXPECT_EQ(spec.priority(), v1::PRIORITY_CLASS_HIGH);
  EXPECT_EQ(spec.max_attempts(), 5u);
  EXPECT_TRUE(spec.network_access());
  EXPECT_EQ(spec.env().at("HF_HOME"), "/scratch/hf");
  EXPECT_EQ(job->idempotency_key, "run-1");
  EXPECT_EQ(job->keys.size(),
            21u);  // every key but a100_equivalents, gpu_milli
}

TEST(JobFileTest, FractionalAndComputeEquivalentFormsWithoutFloatingPoint) {
  auto share = ParseJobFile("command = [\"x\"]\ngpu_milli = 500\n", "f.toml");
  ASSERT_TRUE(share.ok()) << share.status().ToString();
  EXPECT_EQ(share->spec.gpu_milli(), 500u);
  EXPECT_EQ(share->keys.count("cards"), 0u);  // not set: the caller's default

  auto decimal = ParseJobFile("a100_equivalents = \"2.5\"\n", "f.toml");
  ASSERT_TRUE(decimal.ok()) << decimal.status().ToString();
  EXPECT_EQ(decimal->spec.a100_equivalents_milli(), 2500u);
  auto whole = ParseJobFile("a100_equivalents = 8\n", "f.toml");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->spec.a100_equivalents_milli(), 8000u);
  // A TOML float would go through a double: refused, with the way out.
  auto floating = ParseJobFile("a100_equivalents = 2.5\n", "f.toml");
  ASSERT_FALSE(floating.ok());
  EXPECT_EQ(floating.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(
      floating.status().message(),
      HasSubstr("f.toml: 'a100_equivalents' at line 1 must be an integer "
                "or a decimal string"));
}

TEST(JobFileTest, ErrorsNameTheFileTheKeyAndTheLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : {
           Case{"name = \"x\"\ncardz = 2\n",
                "job.toml: unknown key 'cardz' at line 2"},
           Case{"\n\ncards = \"two\"\n",
                "job.toml: 'cards' at line 3 must be an integer"},
           Case{"cards = -1\n",
                "'cards' at line 1 must be from 0 to 4294967295, not -1"},
           Case{"cards = 4294967296\n",
                "must be from 0 to 4294967295, not 4294967296"},
           Case{"max_price = -5\n", "'max_price' at line 1 must be from 0"},
           Case{"command = \"python3 train.py\"\n",
                "'command' at line 1 must be a list"},
           Case{"command = [\"a\", 2]\n",
                "'command' at line 1 must be a list of strings"},
           Case{"command = [\"a\\u0000b\"]\n",
                "'command' at line 1 contains a NUL byte"},
           Case{"name = \"a\\u0000b\"\n",
                "'name' at line 1 contains a NUL byte"},
           Case{"preemptible = \"yes\"\n",
                "'preemptible' at line 1 must be true or false"},
           Case{"priority = \"urgent\"\n",
                "'priority' at line 1 must be low, normal or high"},
           Case{"[env]\nA = 1\n", "'env.A' at line 2 must be a string"},
           Case{"env = \"A=1\"\n", "'env' at line 1 must be a table"},
           Case{"models = [\"\"]\n", "models"},
           Case{"cards = [\n", "job.toml: "},
       }) {
    auto job = ParseJobFile(c.text, "job.toml");
    ASSERT_FALSE(job.ok()) << c.text;
    EXPECT_EQ(job.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(job.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(JobFileTest, AFileThatCannotBeReadIsNotFound) {
  auto job = LoadJobFile("/nonexistent/job.toml");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), StatusCode::kNotFound);
}

TEST(JobFileTest, InputsAreReadRelativeToTheFile) {
  computenet::testing::TempDir dir;
  {
    std::ofstream(dir.File("job.toml"))
        << "command = [\"python3\", \"train.py\"]\n"
        << "inputs = [\"data\", \"train.py\", \"/abs/path\"]\n";
  }
  auto job = LoadJobFile(dir.File("job.toml"));
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_THAT(job->inputs,
              ::testing::ElementsAre(dir.File("data"), dir.File("train.py"),
                                     "/abs/path"));
  auto bad = ParseJobFile("command = [\"x\"]\ninputs = [\"\"]\n", "job.toml");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("'inputs' at line 2"));
}

}  // namespace
}  // namespace computenet::consumer
