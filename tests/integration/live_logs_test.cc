// Live logs (issue 11, item 2): stdout and stderr of every node of a job
// reach its consumer while it runs, through one broker or two (a job
// forwarded to a peer), bounded at every step; a failed job's status keeps
// its stderr's last lines. All real: brokers, provider agents with
// ProcessExecutors running shell commands, consumer Clients, over CURVE on
// loopback ephemeral ports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>

#include "computenet/common/files.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Everything read so far of one job, by (node, stream), with the cursors.
struct Followed {
  std::map<std::pair<std::string, int>, std::string> text;
  uint64_t skipped = 0;
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  bool complete = false;
  size_t largest_reply = 0;
  v1::GetJobLogs request;

  std::string Of(const std::string& node,
                 v1::LogStream stream = v1::LOG_STREAM_STDOUT) const {
    auto it = text.find({node, stream});
    return it == text.end() ? "" : it->second;
  }
};

// One read from the cursors in *followed; false on an error (reported).
bool ReadMore(consumer::Client& client, Followed* followed) {
  auto reply = client.GetLogs(followed->request);
  if (!reply.ok()) {
    ADD_FAILURE() << reply.status().ToString();
    return false;
  }
  followed->state = reply->state();
  followed->complete = reply->complete();
  followed->largest_reply =
      std::max(followed->largest_reply, reply->ByteSizeLong());
  for (const auto& chunk : reply->chunks()) {
    followed->text[{chunk.node(), chunk.stream()}] += chunk.data();
    followed->skipped += chunk.skipped();
    v1::LogCursor* cursor = nullptr;
    for (auto& existing : *followed->request.mutable_cursors()) {
      if (existing.node() == chunk.node() &&
          existing.stream() == chunk.stream()) {
        cursor = &existing;
      }
    }
    if (cursor == nullptr) {
      cursor = followed->request.add_cursors();
      cursor->set_node(chunk.node());
      cursor->set_stream(chunk.stream());
    }
    cursor->set_offset(chunk.offset() + chunk.data().size());
  }
  return true;
}

Followed Follow(const std::string& job_id) {
  Followed followed;
  followed.request.set_job_id(job_id);
  return followed;
}

// Reads until the logs are complete (the job ended, every stream read).
bool ReadToEnd(consumer::Client& client, Followed* followed) {
  return WaitUntil(
      [&] { return ReadMore(client, followed) && followed->complete; },
      std::chrono::seconds(60));
}

void Touch(const std::string& path) { std::ofstream(path) << "go"; }

class LiveLogsTest : public ::testing::Test {
 protected:
  LiveLogsTest() {
    federation_.AddProvider(
        "site-a", MakeRegistration("site-a",
                                   {MakeNode("n1", "ib-1", "A800", 2),
                                    MakeNode("n2", "ib-1", "A800", 2)},
                                   {{"A800", 1000}}));
  }

  std::string Submit(const std::string& command, uint32_t nodes = 1) {
    v1::JobSpec spec = ShellJob(command, 1, {"A800"});
    spec.set_nodes(nodes);
    auto submitted = alice_->Submit(spec);
    EXPECT_TRUE(submitted.ok()) << submitted.status().ToString();
    return submitted.ok() ? submitted->job_id() : "";
  }

  std::string Flag(const std::string& name) const {
    return federation_.dir() + "/" + name;
  }
  std::string WaitFor(const std::string& name) const {
    return "while [ ! -f " + Flag(name) + " ]; do sleep 0.02; done";
  }

  Federation federation_;
  std::unique_ptr<consumer::Client> alice_ = federation_.AddConsumer("alice");
};

TEST_F(LiveLogsTest, EarlyLinesArriveWhileTheJobStillRuns) {
  // The job prints, then waits for the test: what the test reads before it
  // lets the job go was shipped while the job ran.
  const std::string job_id = Submit("echo line 1; echo warn 1 >&2; " +
                                    WaitFor("go") + "; echo line 2");
  Followed followed = Follow(job_id);
  ASSERT_TRUE(WaitUntil([&] {
    return ReadMore(*alice_, &followed) && followed.Of("n1") == "line 1\n" &&
           followed.Of("n1", v1::LOG_STREAM_STDERR) == "warn 1\n";
  })) << followed.Of("n1");
  // Read while the job runs: it cannot end before the test lets it.
  EXPECT_EQ(followed.state, v1::JOB_STATE_RUNNING);
  EXPECT_FALSE(followed.complete);
  Touch(Flag("go"));

  ASSERT_TRUE(ReadToEnd(*alice_, &followed));
  EXPECT_EQ(followed.state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(followed.Of("n1"), "line 1\nline 2\n");
  EXPECT_EQ(followed.Of("n1", v1::LOG_STREAM_STDERR), "warn 1\n");
  EXPECT_EQ(followed.skipped, 0u);

  // The SDK's follower reads the same.
  std::string streamed;
  consumer::LogOptions options;
  options.follow = true;
  options.stream = v1::LOG_STREAM_STDOUT;
  auto state =
      alice_->StreamLogs(job_id, options, [&](const v1::LogChunk& chunk) {
        streamed += chunk.data();
        return true;
      });
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(streamed, "line 1\nline 2\n");
}

TEST_F(LiveLogsTest, NodeAndTailSelectWhatIsRead) {
  const std::string job_id = Submit(
      "for i in 1 2 3 4 5; do echo \"$COMPUTENET_NODE line $i\"; done", 2);
  Followed all = Follow(job_id);
  ASSERT_TRUE(ReadToEnd(*alice_, &all));
  EXPECT_EQ(all.state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_THAT(all.Of("n1"), HasSubstr("n1 line 5\n"));
  EXPECT_THAT(all.Of("n2"), HasSubstr("n2 line 5\n"));

  std::map<std::string, std::string> seen;  // by node
  consumer::LogOptions options;
  options.node = "n2";
  options.tail_lines = 2;
  auto state =
      alice_->StreamLogs(job_id, options, [&](const v1::LogChunk& chunk) {
        seen[chunk.node()] += chunk.data();
        return true;
      });
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen["n2"], "n2 line 4\nn2 line 5\n");
}

TEST_F(LiveLogsTest, AFailedJobsStatusShowsTheLastLinesOfItsStderr) {
  const std::string job_id = Submit(
      "echo starting; i=0; while [ $i -lt 400 ]; do i=$((i+1)); "
      "echo \"error line $i\" >&2; done; exit 3");
  auto finished = alice_->Wait(job_id, 30'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(finished->exit_code(), 3);
  const std::string& tail = finished->stderr_tail();
  EXPECT_LE(tail.size(), 2048u);
  EXPECT_THAT(tail, HasSubstr("error line 400\n"));
  EXPECT_THAT(tail, Not(HasSubstr("error line 1\n")));
  EXPECT_THAT(tail, Not(HasSubstr("starting")));  // stdout is not stderr
  // Kept with the job: the same after a broker restart (and not in lists).
  federation_.RestartBroker();
  ASSERT_TRUE(WaitUntil([&] {
    auto job = alice_->GetJob(job_id);
    return job.ok() && job->stderr_tail() == tail;
  }));
  auto listed = alice_->ListJobs();
  ASSERT_TRUE(listed.ok());
  ASSERT_FALSE(listed->empty());
  EXPECT_EQ((*listed)[0].stderr_tail(), "");
}

TEST_F(LiveLogsTest, AnotherConsumersJobIsNotFoundAndTheBrokerKeepsServing) {
  const std::string job_id = Submit("echo secret output; " + WaitFor("go"));
  Followed mine = Follow(job_id);
  ASSERT_TRUE(WaitUntil([&] {
    return ReadMore(*alice_, &mine) && mine.Of("n1") == "secret output\n";
  }));
  auto bob = federation_.AddConsumer("bob");
  v1::GetJobLogs theirs;
  theirs.set_job_id(job_id);
  auto refused = bob->GetLogs(theirs);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("secret")));
  theirs.set_job_id("test-999");  // no such job: the same answer
  EXPECT_EQ(bob->GetLogs(theirs).status().code(), StatusCode::kNotFound);
  // Bad input is refused with a reason, and the broker goes on.
  v1::GetJobLogs bad;
  bad.set_job_id(job_id);
  bad.set_node(std::string(200, 'n'));
  EXPECT_EQ(alice_->GetLogs(bad).status().code(), StatusCode::kInvalidArgument);

  Touch(Flag("go"));
  ASSERT_TRUE(ReadToEnd(*alice_, &mine));
  EXPECT_EQ(mine.state, v1::JOB_STATE_SUCCEEDED);
}

TEST_F(LiveLogsTest, AJobPrintingFarMoreThanTheBufferDoesNotStallAnything) {
  // 50 MiB on stdout as fast as the shell can write it, then a last line.
  const std::string job_id = Submit(
      "head -c 52428800 /dev/zero | tr '\\0' 'x'; echo; echo the end; "
      "echo done >&2");
  // A second job on the same agent meanwhile: the agent is not stalled.
  const std::string other = Submit("echo other job");
  auto other_done = alice_->Wait(other, 60'000);
  ASSERT_TRUE(other_done.ok()) << other_done.status().ToString();
  EXPECT_EQ(other_done->state(), v1::JOB_STATE_SUCCEEDED);

  auto finished = alice_->Wait(job_id, 120'000);
  ASSERT_TRUE(finished.ok()) << finished.status().ToString();
  EXPECT_EQ(finished->state(), v1::JOB_STATE_SUCCEEDED);

  // The broker holds only the newest bytes of the stream, and says how much
  // of the rest a reader from the start missed; every reply stays small.
  Followed followed = Follow(job_id);
  ASSERT_TRUE(ReadToEnd(*alice_, &followed));
  const std::string out = followed.Of("n1");
  EXPECT_LE(out.size(), 256u * 1024);
  EXPECT_THAT(out, HasSubstr("xxx\nthe end\n"));
  EXPECT_GE(followed.skipped + out.size(), 52428800u);
  EXPECT_LE(followed.largest_reply, 600u * 1024);
  EXPECT_EQ(followed.Of("n1", v1::LOG_STREAM_STDERR), "done\n");
}

// A job forwarded from north (home, no providers) to west: its logs come
// back through both brokers.
class ForwardedLiveLogsTest : public ::testing::Test {
 protected:
  ForwardedLiveLogsTest()
      : north_identity_(MustGenerateIdentity("north")),
        west_identity_(MustGenerateIdentity("west")),
        north_(OptionsFor("north", "west", west_identity_), north_identity_),
        west_(OptionsFor("west", "north", north_identity_), west_identity_) {
    EXPECT_TRUE(WriteFileAtomically(EndpointFile("north"),
                                    north_.broker().endpoint(), 0644)
                    .ok());
    EXPECT_TRUE(WriteFileAtomically(EndpointFile("west"),
                                    west_.broker().endpoint(), 0644)
                    .ok());
    v1::RegisterProvider west_site = MakeRegistration(
        "west-site", {MakeNode("w1", "f", "910B", 4)}, {{"910B", 900}});
    west_site.set_region("west");
    west_.AddProvider("west-site", west_site);
  }

  std::string EndpointFile(const std::string& broker) const {
    return endpoints_.File(broker + ".endpoint");
  }

  broker::BrokerOptions OptionsFor(const std::string& self,
                                   const std::string& peer,
                                   const Identity& peer_identity) {
    broker::BrokerOptions options;
    options.broker_id = self;
    options.region = self;
    options.heartbeat_interval_ms = 100;
    broker::PeerConfig config;
    config.broker_id = peer;
    config.region = peer;
    config.endpoint_file = EndpointFile(peer);
    config.curve_public = peer_identity.curve().public_z85;
    config.ed25519_public = peer_identity.signing_key().verifying_key().hex();
    options.peers.push_back(config);
    return options;
  }

  TempDir endpoints_;
  Identity north_identity_;
  Identity west_identity_;
  Federation north_;
  Federation west_;
};

TEST_F(ForwardedLiveLogsTest, LogsAndTheStderrTailComeBackThroughBothBrokers) {
  auto alice = north_.AddConsumer("alice");
  const std::string flag = north_.dir() + "/go";
  v1::JobSpec spec = ShellJob("echo west line 1; while [ ! -f " + flag +
                                  " ]; do sleep 0.02; done; echo west line 2; "
                                  "echo it broke >&2; exit 4",
                              1, {"910B"});
  spec.add_allowed_regions("west");
  auto submitted = alice->Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  const std::string job_id = submitted->job_id();

  Followed followed = Follow(job_id);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ReadMore(*alice, &followed) &&
               followed.Of("w1") == "west line 1\n";
      },
      std::chrono::seconds(60)));
  EXPECT_EQ(followed.state, v1::JOB_STATE_RUNNING);
  auto job = alice->GetJob(job_id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->remote_broker(), "west");  // it did go through two brokers
  Touch(flag);

  ASSERT_TRUE(ReadToEnd(*alice, &followed));
  EXPECT_EQ(followed.state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(followed.Of("w1"), "west line 1\nwest line 2\n");
  EXPECT_EQ(followed.Of("w1", v1::LOG_STREAM_STDERR), "it broke\n");
  auto ended = alice->GetJob(job_id);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->exit_code(), 4);
  EXPECT_EQ(ended->stderr_tail(), "it broke\n");
}

}  // namespace
}  // namespace computenet::testing
