// The Slurm output parsers and state mapping, on the odd output real Slurm
// prints: empty output, extra whitespace, unknown states, "(null)" and
// "Unknown" times, job array ids "123_4", multi-cluster ids "123;cluster",
// "CLUSTER:" banners, values with spaces.
#include "computenet/provider/slurm_parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ctime>

namespace computenet::provider {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SbatchParsableTest, PlainIdClusterAndWhitespace) {
  auto plain = ParseSbatchParsable("1234\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->job_id, "1234");
  EXPECT_EQ(plain->cluster, "");

  auto cluster = ParseSbatchParsable("  77;north-cluster  \n\n");
  ASSERT_TRUE(cluster.ok());
  EXPECT_EQ(cluster->job_id, "77");
  EXPECT_EQ(cluster->cluster, "north-cluster");

  // A site wrapper printing a banner first: the id is the last line.
  auto banner = ParseSbatchParsable("site policy: ok\r\n99\r\n");
  ASSERT_TRUE(banner.ok());
  EXPECT_EQ(banner->job_id, "99");
}

TEST(SbatchParsableTest, RejectsEmptyAndJunk) {
  EXPECT_EQ(ParseSbatchParsable("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSbatchParsable(" \n \n").status().code(),
            StatusCode::kInvalidArgument);
  auto junk = ParseSbatchParsable("Submitted batch job 12");
  EXPECT_EQ(junk.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(junk.status().message(), HasSubstr("not a job id"));
  EXPECT_FALSE(ParseSbatchParsable("12_3_4").ok());
  EXPECT_TRUE(ParseSbatchParsable("12_3").ok());  // an array task
}

TEST(ScontrolTest, MultiLineRecordWithSpacesDuplicatesAndNull) {
  const char* text =
      "JobId=42 JobName=cn-test-1\n"
      "   UserId=root(0) GroupId=root(0) MCS_label=N/A\n"
      "   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n"
      "   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0\n"
      "   StartTime=1795243293 EndTime=1795243294 Deadline=N/A\n"
      "   AllocNode:Sid=localhost:14763\n"
      "   TRES=cpu=1,node=1,billing=1\n"
      "   JOB_GRES=gpu:2\n"
      "     Nodes=n1 CPU_IDs=0 Mem=0 GRES=gpu:1(IDX:0)\n"
      "     Nodes=n2 CPU_IDs=0 Mem=0 GRES=gpu:1(IDX:1)\n"
      "   Comment=computenet/v1;owner=a;job=x \n"
      "   Power=\n"
      "   \n"
      "\n";
  auto records = ParseScontrolRecords(text);
  ASSERT_EQ(records.size(), 1u);
  const auto& job = records[0];
  EXPECT_EQ(job.Get("JobId"), "42");
  EXPECT_EQ(job.Get("JobState"), "FAILED");
  EXPECT_EQ(job.Get("Dependency"), "(null)");
  EXPECT_EQ(job.Get("ExitCode"), "3:0");
  EXPECT_EQ(job.Get("AllocNode:Sid"), "localhost:14763");
  EXPECT_EQ(job.Get("TRES"), "cpu=1,node=1,billing=1");
  EXPECT_EQ(job.Get("Comment"), "computenet/v1;owner=a;job=x");
  EXPECT_TRUE(job.Has("Power"));
  EXPECT_EQ(job.Get("Power"), "");
  EXPECT_EQ(job.Get("Missing"), "");
  EXPECT_THAT(job.GetAll("GRES"), ElementsAre("gpu:1(IDX:0)", "gpu:1(IDX:1)"));
}

TEST(ScontrolTest, OneLinerRecordsAndValuesWithSpaces) {
  const char* text =
      "NodeName=a1 Arch=x86_64 Gres=gpu:a800:8(S:0-1) OS=Linux 6.1.0 #1 SMP "
      "PREEMPT_DYNAMIC State=IDLE Partitions=gpu,share\n"
      "NodeName=a2 Gres=(null) State=DOWN* Partitions=gpu\n";
  auto records = ParseScontrolRecords(text);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].Get("OS"), "Linux 6.1.0 #1 SMP PREEMPT_DYNAMIC");
  EXPECT_EQ(records[0].Get("Gres"), "gpu:a800:8(S:0-1)");
  EXPECT_EQ(records[1].Get("NodeName"), "a2");
  EXPECT_EQ(records[1].Get("State"), "DOWN*");
}

TEST(ScontrolTest, EmptyAndErrorOutputGiveNoRecords) {
  EXPECT_TRUE(ParseScontrolRecords("").empty());
  EXPECT_TRUE(ParseScontrolRecords("\n  \n").empty());
  EXPECT_TRUE(ParseScontrolRecords("slurm_load_jobs error: Invalid job id specified\n")
                  .empty());
}

TEST(ScontrolTest, JobcompFileLineParsesLikeARecord) {
  // A line of Slurm's jobcomp/filetxt log, as slurmctld 22.05 writes it
  // (times in local ISO form, whatever the reader's SLURM_TIME_FORMAT).
  const char* line =
      "JobId=7 UserId=root(0) GroupId=root(0) Name=cn-test-1 JobState=CANCELLED "
      "Partition=debug TimeLimit=UNLIMITED StartTime=2026-11-21T06:43:35 "
      "EndTime=2026-11-21T06:43:38 NodeList=localhost NodeCnt=1 ProcCnt=1 "
      "WorkDir=/work ReservationName= Tres=cpu=1,mem=16000M,node=1,billing=1 "
      "Account= QOS= WcKey= Cluster=unknown SubmitTime=2026-11-21T06:43:32 "
      "EligibleTime=2026-11-21T06:43:32 DerivedExitCode=0:0 ExitCode=0:15\n";
  auto records = ParseScontrolRecords(line);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].Get("Name"), "cn-test-1");
  EXPECT_EQ(ParseSlurmState(records[0].Get("JobState")), SlurmState::kCancelled);
  EXPECT_EQ(ParseSlurmExitCode(records[0].Get("ExitCode")), 143);
  auto start = ParseSlurmTime(records[0].Get("StartTime"));
  auto end = ParseSlurmTime(records[0].Get("EndTime"));
  ASSERT_TRUE(start && end);
  EXPECT_EQ(*end - *start, 3);
  EXPECT_EQ(records[0].Get("ReservationName"), "");
}

TEST(SlurmTimeTest, EpochIsoAndPlaceholders) {
  EXPECT_EQ(ParseSlurmTime("1795243293"), 1795243293);
  EXPECT_EQ(ParseSlurmTime("  1795243293 \n"), 1795243293);
  for (const char* none : {"", "0", "None", "NONE", "Unknown", "(null)", "N/A",
                           "2026-13-01T00:00:00", "yesterday", "12:00:00"}) {
    EXPECT_FALSE(ParseSlurmTime(none).has_value()) << none;
  }
  // ISO is local time, as Slurm prints it.
  std::tm tm{};
  tm.tm_year = 2026 - 1900;
  tm.tm_mon = 10;
  tm.tm_mday = 21;
  tm.tm_hour = 6;
  tm.tm_min = 40;
  tm.tm_sec = 1;
  tm.tm_isdst = -1;
  EXPECT_EQ(ParseSlurmTime("2026-11-21T06:40:01"),
            static_cast<int64_t>(std::mktime(&tm)));
}

TEST(SlurmExitCodeTest, StatusAndSignal) {
  EXPECT_EQ(ParseSlurmExitCode("0:0"), 0);
  EXPECT_EQ(ParseSlurmExitCode("3:0"), 3);
  EXPECT_EQ(ParseSlurmExitCode("0:15"), 143);
  EXPECT_EQ(ParseSlurmExitCode(" 1 "), 1);
  EXPECT_FALSE(ParseSlurmExitCode("").has_value());
  EXPECT_FALSE(ParseSlurmExitCode("a:b").has_value());
  EXPECT_FALSE(ParseSlurmExitCode("1:2:3").has_value());
}

TEST(SlurmStateTest, LongShortDecoratedAndUnknown) {
  EXPECT_EQ(ParseSlurmState("PENDING"), SlurmState::kPending);
  EXPECT_EQ(ParseSlurmState("PD"), SlurmState::kPending);
  EXPECT_EQ(ParseSlurmState("REQUEUE_HOLD"), SlurmState::kPending);
  EXPECT_EQ(ParseSlurmState(" running "), SlurmState::kRunning);
  EXPECT_EQ(ParseSlurmState("COMPLETING"), SlurmState::kRunning);
  EXPECT_EQ(ParseSlurmState("SUSPENDED"), SlurmState::kRunning);
  EXPECT_EQ(ParseSlurmState("COMPLETED"), SlurmState::kCompleted);
  EXPECT_EQ(ParseSlurmState("CANCELLED by 0"), SlurmState::kCancelled);
  EXPECT_EQ(ParseSlurmState("CANCELLED+"), SlurmState::kCancelled);
  EXPECT_EQ(ParseSlurmState("TIMEOUT"), SlurmState::kTimeout);
  EXPECT_EQ(ParseSlurmState("NODE_FAIL"), SlurmState::kNodeFail);
  EXPECT_EQ(ParseSlurmState("PREEMPTED"), SlurmState::kPreempted);
  EXPECT_EQ(ParseSlurmState("OUT_OF_MEMORY"), SlurmState::kOutOfMemory);
  EXPECT_EQ(ParseSlurmState("OOM"), SlurmState::kOutOfMemory);
  EXPECT_EQ(ParseSlurmState("BOOT_FAIL"), SlurmState::kBootFail);
  EXPECT_EQ(ParseSlurmState("DEADLINE"), SlurmState::kDeadline);
  EXPECT_EQ(ParseSlurmState("WARPED"), SlurmState::kUnknown);
  EXPECT_EQ(ParseSlurmState(""), SlurmState::kUnknown);
  // An unknown state is never final: the job is not failed for it.
  EXPECT_FALSE(IsTerminal(SlurmState::kUnknown));
  EXPECT_FALSE(IsTerminal(SlurmState::kPending));
  EXPECT_FALSE(IsTerminal(SlurmState::kRunning));
  EXPECT_TRUE(IsTerminal(SlurmState::kTimeout));
  EXPECT_FALSE(HasStarted(SlurmState::kPending));
  EXPECT_TRUE(HasStarted(SlurmState::kRunning));
}

TEST(SlurmOutcomeTest, EveryFinalStateMapsWithSlurmsReasonKept) {
  auto completed = MapSlurmOutcome("COMPLETED", "None", 0);
  EXPECT_EQ(completed.state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(completed.exit_code, 0);

  auto failed = MapSlurmOutcome("FAILED", "NonZeroExitCode", 3);
  EXPECT_EQ(failed.state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(failed.exit_code, 3);
  EXPECT_THAT(failed.message, HasSubstr("exited with 3"));
  EXPECT_THAT(failed.message, HasSubstr("FAILED, reason NonZeroExitCode"));

  auto timeout = MapSlurmOutcome("TIMEOUT", "TimeLimit", 143);
  EXPECT_EQ(timeout.state, v1::JOB_STATE_FAILED);
  EXPECT_THAT(timeout.message, HasSubstr("time limit"));
  EXPECT_THAT(timeout.message, HasSubstr("TIMEOUT, reason TimeLimit"));

  // Cancelled in Slurm by someone else: not the consumer's cancel.
  auto cancelled = MapSlurmOutcome("CANCELLED by 0", "None", std::nullopt);
  EXPECT_EQ(cancelled.state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(cancelled.exit_code, -1);
  EXPECT_THAT(cancelled.message, HasSubstr("not by the consumer"));
  EXPECT_THAT(cancelled.message, HasSubstr("CANCELLED by 0"));

  EXPECT_THAT(MapSlurmOutcome("NODE_FAIL", "NodeDown", 0).message,
              HasSubstr("node failed"));
  EXPECT_THAT(MapSlurmOutcome("PREEMPTED", "None", 0).message,
              HasSubstr("preempted"));
  EXPECT_THAT(MapSlurmOutcome("OUT_OF_MEMORY", "OutOfMemory", 0).message,
              HasSubstr("out of memory"));
  EXPECT_EQ(MapSlurmOutcome("OUT_OF_MEMORY", "", 0).state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(MapSlurmOutcome("BOOT_FAIL", "", 0).state, v1::JOB_STATE_FAILED);
  EXPECT_EQ(MapSlurmOutcome("DEADLINE", "", 0).state, v1::JOB_STATE_FAILED);
  // COMPLETED with a non-zero code (a derived code) still fails.
  EXPECT_EQ(MapSlurmOutcome("COMPLETED", "", 2).state, v1::JOB_STATE_FAILED);
}

TEST(SqueueTest, RowsArraysBannersCommentsAndJunk) {
  const char* text =
      "CLUSTER: north\n"
      "12|12|RUNNING|1795243293|1795246893|None|computenet/v1;owner=a;job=x\n"
      "\n"
      "  13|10_3|PENDING|N/A|NONE|Resources|  \n"
      "14|14|WARPED|(null)|Unknown|None|a|comment|with|bars\n"
      "garbage line\n"
      "x|x|RUNNING|0|0|None|c\n"
      "15|15|COMPLETED\n";
  auto rows = ParseSqueue(text);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].job_id, "12");
  EXPECT_EQ(rows[0].state, "RUNNING");
  EXPECT_EQ(rows[0].start_s, 1795243293);
  EXPECT_EQ(rows[0].end_s, 1795246893);
  EXPECT_EQ(rows[0].comment, "computenet/v1;owner=a;job=x");
  EXPECT_EQ(rows[1].job_id, "13");
  EXPECT_EQ(rows[1].display_id, "10_3");
  EXPECT_FALSE(rows[1].start_s.has_value());
  EXPECT_FALSE(rows[1].end_s.has_value());
  EXPECT_EQ(rows[1].reason, "Resources");
  EXPECT_EQ(rows[1].comment, "");
  EXPECT_EQ(rows[2].state, "WARPED");
  EXPECT_EQ(rows[2].comment, "a|comment|with|bars");
  EXPECT_TRUE(ParseSqueue("").empty());
  EXPECT_TRUE(ParseSqueue("\n\n   \n").empty());
}

TEST(SacctTest, SkipsStepsAndReadsTres) {
  const char* text =
      "7|cn-test-1|COMPLETED|0:0|1795243293|1795243300|billing=1,cpu=1,gres/gpu=2,node=1\n"
      "7.batch|batch|COMPLETED|0:0|1795243293|1795243300|cpu=1\n"
      "8|cn-test-2|CANCELLED by 0|0:15|Unknown|1795243301|\n";
  auto rows = ParseSacct(text);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].name, "cn-test-1");
  EXPECT_EQ(rows[0].exit_code, 0);
  EXPECT_EQ(rows[0].end_s, 1795243300);
  EXPECT_EQ(CountTresGres(rows[0].alloc_tres, "gpu"), 2u);
  EXPECT_EQ(ParseSlurmState(rows[1].state), SlurmState::kCancelled);
  EXPECT_EQ(rows[1].exit_code, 143);
  EXPECT_FALSE(rows[1].start_s.has_value());
  EXPECT_TRUE(ParseSacct("").empty());
}

TEST(GresTest, NodeJobAndTresForms) {
  auto typed = ParseGresList("gpu:a800:8(S:0-1)");
  ASSERT_EQ(typed.size(), 1u);
  EXPECT_EQ(typed[0].name, "gpu");
  EXPECT_EQ(typed[0].type, "a800");
  EXPECT_EQ(typed[0].count, 8u);

  auto mixed = ParseGresList("gpu:a800:4(S:0,1),gpu:t4:2(S:1),mps:100");
  ASSERT_EQ(mixed.size(), 3u);
  EXPECT_EQ(CountGres("gpu:a800:4(S:0,1),gpu:t4:2(S:1),mps:100", "gpu"), 6u);
  EXPECT_EQ(CountGres("gpu:a800:4(S:0,1),gpu:t4:2(S:1)", "gpu:A800"), 4u);
  EXPECT_EQ(CountGres("gpu:8", "gpu"), 8u);
  EXPECT_EQ(CountGres("gpu", "gpu"), 1u);
  EXPECT_EQ(CountGres("gpu:2(IDX:0-1)", "gpu"), 2u);
  EXPECT_EQ(CountGres("gres:gpu:2", "gpu"), 2u);  // TresPerNode
  EXPECT_EQ(CountGres("gres/gpu:2", "gpu"), 2u);
  EXPECT_EQ(CountGres("(null)", "gpu"), 0u);
  EXPECT_EQ(CountGres("", "gpu"), 0u);
  EXPECT_EQ(CountGres("N/A", "gpu"), 0u);
  EXPECT_EQ(CountTresGres("cpu=1,node=1,billing=1", "gpu"), 0u);
  EXPECT_EQ(CountTresGres("cpu=4,gres/gpu=8,gres/gpu:a800=8", "gpu"), 8u);
  EXPECT_EQ(CountTresGres("cpu=4,gres/gpu=8,gres/gpu:a800=8", "gpu:a800"), 8u);
}

TEST(JobTagTest, RoundTripsAnyTextAndRejectsOthers) {
  JobTag tag;
  tag.owner = "zhangbei 1|x;y=z";
  tag.job_id = "north-42";
  tag.model = "A800";
  tag.max_duration_s = 3600;
  tag.cards = 16;
  const std::string comment = EncodeJobTag(tag);
  EXPECT_EQ(comment.find(' '), std::string::npos);
  EXPECT_EQ(comment.find('|'), std::string::npos);
  auto decoded = DecodeJobTag(comment + "  ");  // scontrol pads it
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->owner, tag.owner);
  EXPECT_EQ(decoded->job_id, "north-42");
  EXPECT_EQ(decoded->model, "A800");
  EXPECT_EQ(decoded->max_duration_s, 3600u);
  EXPECT_EQ(decoded->cards, 16u);

  EXPECT_FALSE(DecodeJobTag("").has_value());
  EXPECT_FALSE(DecodeJobTag("(null)").has_value());
  EXPECT_FALSE(DecodeJobTag("someone else's comment").has_value());
  EXPECT_FALSE(DecodeJobTag("computenet/v1;owner=a").has_value());  // no job
  EXPECT_FALSE(DecodeJobTag("computenet/v1;owner=a;job=b;max_s=x").has_value());
  EXPECT_FALSE(DecodeJobTag("computenet/v1;owner=%G1;job=b").has_value());
  // Fields from a newer agent are ignored.
  EXPECT_TRUE(DecodeJobTag("computenet/v1;owner=a;job=b;future=1").has_value());
}

TEST(SlurmErrorsTest, TransientAndInvalidJob) {
  EXPECT_TRUE(IsTransientSlurmError(
      "sbatch: error: Batch job submission failed: Unable to contact slurm "
      "controller (connect failure)"));
  EXPECT_TRUE(IsTransientSlurmError("squeue: error: Socket timed out on send/recv"));
  EXPECT_TRUE(IsTransientSlurmError("Munge encode failed: Failed to access socket"));
  EXPECT_FALSE(IsTransientSlurmError(
      "sbatch: error: Batch job submission failed: Invalid partition name specified"));
  EXPECT_TRUE(IsInvalidJobIdError("slurm_load_jobs error: Invalid job id specified"));
  EXPECT_FALSE(IsInvalidJobIdError("slurm_load_jobs error: Unable to contact"));
}

}  // namespace
}  // namespace computenet::provider
