// Negative tests: identity, authorization and hostile input. Each talks to a
// real broker over real CURVE sockets, and checks the broker keeps serving.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "computenet/ledger/ledger.h"
#include "computenet/common/transport.h"
#include "computenet/common/usage_record.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

class SecurityTest : public ::testing::Test {
 protected:
  SecurityTest() : context_(1) {}

  // A raw DEALER for `identity`, to send hand-made frames.
  std::unique_ptr<DealerChannel> Raw(const Identity& identity) {
    DealerOptions options;
    options.endpoint = federation_.broker().endpoint();
    options.server_public_key = federation_.broker_identity().curve().public_z85;
    options.client_keys = identity.curve();
    options.send_timeout_ms = 1000;
    auto channel = DealerChannel::Connect(context_, options);
    EXPECT_TRUE(channel.ok());
    return std::move(*channel);
  }

  // The next non-heartbeat envelope, or nullopt after timeout_ms.
  std::optional<v1::Envelope> NextReply(DealerChannel& channel,
                                        int timeout_ms = 3000) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      auto received = channel.Receive(50);
      if (!received.ok() || !received->has_value()) continue;
      if ((*received)->type() == v1::MESSAGE_TYPE_HEARTBEAT) continue;
      return **received;
    }
    return std::nullopt;
  }

  // Registers a raw provider connection and returns it.
  std::unique_ptr<DealerChannel> RegisterRawProvider(const Identity& identity) {
    auto channel = Raw(identity);
    EXPECT_TRUE(channel
                    ->Send(v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                           channel->NextRequestId(),
                           MakeRegistration(identity.name(),
                                            {MakeNode("n1", "f", "A800", 2)},
                                            {{"A800", 1000}}))
                    .ok());
    auto reply = NextReply(*channel);
    EXPECT_TRUE(reply.has_value());
    if (reply) {
      EXPECT_EQ(reply->type(), v1::MESSAGE_TYPE_REGISTER_PROVIDER_REPLY);
      EXPECT_EQ(reply->status().code(), v1::Status::OK)
          << reply->status().message();
    }
    return channel;
  }

  // The broker still answers a well-formed request from a known consumer.
  void ExpectBrokerServes() {
    auto client = federation_.ConnectClient(alice_);
    auto jobs = client->ListJobs();
    EXPECT_TRUE(jobs.ok()) << jobs.status().ToString();
  }

  // Runs one job on provider "site-a" and returns its final info.
  v1::JobInfo RunOneJob() {
    auto client = federation_.ConnectClient(alice_);
    auto submitted = client->Submit(ShellJob("true"));
    EXPECT_TRUE(submitted.ok());
    auto done = client->Wait(submitted->job_id(), 20'000);
    EXPECT_TRUE(done.ok());
    return *done;
  }

  zmq::context_t context_;
  Federation federation_;
  Identity alice_ = federation_.Enroll(broker::Role::kConsumer, "alice");
};

TEST_F(SecurityTest, UnenrolledConsumerCannotSubmitAndNothingIsStored) {
  Identity stranger = MustGenerateIdentity("mallory");
  consumer::ClientOptions options;
  options.broker_endpoint = federation_.broker().endpoint();
  options.broker_public_key = federation_.broker_identity().curve().public_z85;
  options.request_timeout_ms = 500;
  options.retries = 0;
  auto client = consumer::Client::Connect(options, stranger);
  ASSERT_TRUE(client.ok());
  auto submitted = (*client)->Submit(ShellJob("true"));
  // Refused at the handshake, and told so (not "unavailable").
  EXPECT_EQ(submitted.status().code(), StatusCode::kUnauthenticated)
      << submitted.status().ToString();
  EXPECT_THAT(submitted.status().message(),
              ::testing::StartsWith("key refused by the broker at"));
  auto jobs = federation_.OpenStore().ListJobs("", {}, 100);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
  ExpectBrokerServes();
}

TEST_F(SecurityTest, UnenrolledProviderCannotRegister) {
  Identity stranger = MustGenerateIdentity("rogue-site");
  auto channel = Raw(stranger);
  // The handshake is refused: the message never leaves the client, or
  // leaves for a connection the broker closed. No reply either way.
  (void)channel->Send(v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                      channel->NextRequestId(),
                      MakeRegistration("rogue", {MakeNode("n1", "f", "A800", 8)},
                                       {{"A800", 1}}));
  EXPECT_FALSE(NextReply(*channel, 500).has_value());
  auto providers = federation_.OpenStore().ListProviders();
  ASSERT_TRUE(providers.ok());
  EXPECT_TRUE(providers->empty());
}

TEST_F(SecurityTest, RevokedKeyIsRefused) {
  ASSERT_TRUE(federation_.OpenStore().Revoke(broker::Role::kConsumer, "alice").ok());
  consumer::ClientOptions options;
  options.broker_endpoint = federation_.broker().endpoint();
  options.broker_public_key = federation_.broker_identity().curve().public_z85;
  options.request_timeout_ms = 500;
  options.retries = 0;
  auto client = consumer::Client::Connect(options, alice_);
  ASSERT_TRUE(client.ok());
  auto listed = (*client)->ListJobs();
  EXPECT_EQ(listed.status().code(), StatusCode::kUnauthenticated)
      << listed.status().ToString();
  EXPECT_THAT(listed.status().message(),
              ::testing::HasSubstr("(ZAP status 400)"));
}

TEST_F(SecurityTest, ConsumerCannotActAsProvider) {
  auto channel = Raw(alice_);
  ASSERT_TRUE(channel
                  ->Send(v1::MESSAGE_TYPE_REGISTER_PROVIDER,
                         channel->NextRequestId(),
                         MakeRegistration("fake", {MakeNode("n1", "f", "A800", 8)},
                                          {{"A800", 1}}))
                  .ok());
  auto reply = NextReply(*channel);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), v1::Status::PERMISSION_DENIED);
  auto providers = federation_.OpenStore().ListProviders();
  ASSERT_TRUE(providers.ok());
  EXPECT_TRUE(providers->empty());
}

TEST_F(SecurityTest, ConsumerCannotSeeOrCancelAnotherConsumersJob) {
  auto alice = federation_.ConnectClient(alice_);
  auto bob = federation_.AddConsumer("bob");
  auto submitted = alice->Submit(ShellJob("sleep 30"));  // no provider: queued
  ASSERT_TRUE(submitted.ok());
  const std::string job_id = submitted->job_id();

  EXPECT_EQ(bob->GetJob(job_id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(bob->Cancel(job_id).status().code(), StatusCode::kNotFound);
  auto bobs = bob->ListJobs();
  ASSERT_TRUE(bobs.ok());
  EXPECT_TRUE(bobs->empty());
  // Bob cannot subscribe to its events either.
  EXPECT_EQ(bob->Wait(job_id, 500).status().code(), StatusCode::kNotFound);

  auto job = alice->GetJob(job_id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  EXPECT_FALSE(job->cancel_requested());
}

TEST_F(SecurityTest, MalformedFrameGetsErrorReplyAndBrokerKeepsServing) {
  auto channel = Raw(alice_);
  ASSERT_TRUE(channel->socket()
                  .send(zmq::str_buffer("\xff\xff garbage, not protobuf"),
                        zmq::send_flags::none)
                  .has_value());
  auto reply = NextReply(*channel);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type(), v1::MESSAGE_TYPE_ERROR);
  EXPECT_EQ(reply->status().code(), v1::Status::INVALID_ARGUMENT);
  ExpectBrokerServes();
}

TEST_F(SecurityTest, WrongProtocolVersionIsRefused) {
  auto channel = Raw(alice_);
  v1::Envelope envelope;
  envelope.set_protocol_version(99);
  envelope.set_type(v1::MESSAGE_TYPE_LIST_JOBS);
  envelope.set_request_id(5);
  ASSERT_TRUE(channel->socket()
                  .send(zmq::buffer(envelope.SerializeAsString()),
                        zmq::send_flags::none)
                  .has_value());
  auto reply = NextReply(*channel);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), v1::Status::FAILED_PRECONDITION);
  EXPECT_THAT(reply->status().message(), HasSubstr("protocol version 99"));
}

TEST_F(SecurityTest, UnknownMessageTypeGetsUnimplemented) {
  auto channel = Raw(alice_);
  v1::Heartbeat empty;
  const uint64_t request_id = channel->NextRequestId();
  ASSERT_TRUE(
      channel->Send(static_cast<v1::MessageType>(999), request_id, empty).ok());
  auto reply = NextReply(*channel);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type(), v1::MESSAGE_TYPE_ERROR);
  EXPECT_EQ(reply->request_id(), request_id);
  EXPECT_EQ(reply->status().code(), v1::Status::UNIMPLEMENTED);
  ExpectBrokerServes();
}

TEST_F(SecurityTest, WrongBodyTypeGetsInvalidArgument) {
  auto channel = Raw(alice_);
  ASSERT_TRUE(channel
                  ->SendSerialized(v1::MESSAGE_TYPE_SUBMIT_JOB,
                                   channel->NextRequestId(),
                                   std::string("\x0a\xff\xff\xff\xff", 5))
                  .ok());
  auto reply = NextReply(*channel);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), v1::Status::INVALID_ARGUMENT);
}

TEST_F(SecurityTest, OversizedMessageIsDroppedAndBrokerKeepsServing) {
  auto channel = Raw(alice_);
  // Make sure the connection is up, then send 2 MiB: libzmq closes the
  // connection at the size limit before any byte reaches a handler.
  ASSERT_TRUE(channel->Send(v1::MESSAGE_TYPE_LIST_JOBS, channel->NextRequestId(),
                            v1::ListJobs())
                  .ok());
  ASSERT_TRUE(NextReply(*channel).has_value());
  v1::SubmitJob huge;
  *huge.mutable_spec() = ShellJob(std::string(2 << 20, 'x'));
  (void)channel->Send(v1::MESSAGE_TYPE_SUBMIT_JOB, channel->NextRequestId(), huge);
  EXPECT_FALSE(NextReply(*channel, 500).has_value());
  auto jobs = federation_.OpenStore().ListJobs("", {}, 10);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
  ExpectBrokerServes();
}

TEST_F(SecurityTest, ExtraFramesAreDroppedAndBrokerKeepsServing) {
  auto channel = Raw(alice_);
  ASSERT_TRUE(channel->socket()
                  .send(zmq::str_buffer("one"), zmq::send_flags::sndmore)
                  .has_value());
  ASSERT_TRUE(channel->socket()
                  .send(zmq::str_buffer("two"), zmq::send_flags::none)
                  .has_value());
  EXPECT_FALSE(NextReply(*channel, 300).has_value());
  ExpectBrokerServes();
}

TEST_F(SecurityTest, ImpossibleJobSpecIsRejected) {
  auto alice = federation_.ConnectClient(alice_);
  v1::JobSpec no_cards = ShellJob("true");
  no_cards.set_cards_per_node(0);
  EXPECT_EQ(alice->Submit(no_cards).status().code(),
            StatusCode::kInvalidArgument);
  v1::JobSpec no_command = ShellJob("true");
  no_command.clear_command();
  EXPECT_EQ(alice->Submit(no_command).status().code(),
            StatusCode::kInvalidArgument);
  v1::JobSpec no_limit = ShellJob("true");
  no_limit.set_max_duration_s(0);
  auto reply = alice->Submit(no_limit);
  EXPECT_EQ(reply.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(reply.status().message(), HasSubstr("max_duration_s"));
}

TEST_F(SecurityTest, ProviderCannotReportUsageForJobNotPlacedOnIt) {
  federation_.AddProvider(
      "site-a", MakeRegistration("site-a", {MakeNode("n1", "f", "A800", 2)},
                                 {{"A800", 1000}}));
  v1::JobInfo job = RunOneJob();
  ASSERT_EQ(job.provider(), "site-a");

  Identity intruder = federation_.Enroll(broker::Role::kProvider, "site-b");
  auto channel = RegisterRawProvider(intruder);
  v1::UsageRecord record;
  record.set_record_id("forged-1");
  record.set_job_id(job.job_id());
  record.set_provider("site-b");
  record.set_model("A800");
  record.set_cards(1);
  record.set_start_ms(1000);
  record.set_end_ms(3'601'000);
  record.set_card_seconds(CardSecondsFor(1, 1000, 3'601'000));
  auto report = SignUsageRecord(intruder.signing_key(), record);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(channel->Send(v1::MESSAGE_TYPE_USAGE_REPORT,
                            channel->NextRequestId(), *report)
                  .ok());
  auto reply = NextReply(*channel);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), v1::Status::PERMISSION_DENIED);
  EXPECT_THAT(reply->status().message(), HasSubstr("not placed on you"));

  // Claiming to be site-a does not help: the record names site-a but is
  // signed with site-b's key, and the connection is site-b's.
  record.set_provider("site-a");
  auto claimed = SignUsageRecord(intruder.signing_key(), record);
  ASSERT_TRUE(claimed.ok());
  ASSERT_TRUE(channel->Send(v1::MESSAGE_TYPE_USAGE_REPORT,
                            channel->NextRequestId(), *claimed)
                  .ok());
  reply = NextReply(*channel);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), v1::Status::PERMISSION_DENIED);

  auto audit = ledger::VerifyLedger(federation_.OpenStore().database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->usage_records, 1u);  // only site-a's genuine record
  EXPECT_TRUE(ledger::VerifyLedger(federation_.OpenStore().database()).ok());
}

// Placed on a raw provider connection, so the test controls its reports.
TEST_F(SecurityTest, RevokedConsumerOnAnOpenConnectionIsRefusedFromThenOn) {
  auto client = federation_.ConnectClient(alice_);
  ASSERT_TRUE(client->ListJobs().ok());
  // The operator revokes alice from another process (here: another
  // connection to the file), while her connection stays open.
  ASSERT_TRUE(
      federation_.OpenStore().Revoke(broker::Role::kConsumer, "alice").ok());
  StatusCode code = StatusCode::kOk;
  EXPECT_TRUE(WaitUntil(
      [&] {
        code = client->ListJobs().status().code();
        return code != StatusCode::kOk;
      },
      std::chrono::seconds(5)));
  // Refused (a frame that arrives before the broker dropped the connection)
  // or refused at the handshake (the connection is dropped and the socket's
  // reconnect refused, which its monitor reports): never served.
  EXPECT_THAT(code, ::testing::AnyOf(StatusCode::kPermissionDenied,
                                     StatusCode::kUnauthenticated));
  auto submitted = client->Submit(ShellJob("true"));
  EXPECT_THAT(submitted.status().code(),
              ::testing::AnyOf(StatusCode::kPermissionDenied,
                               StatusCode::kUnauthenticated));
  auto jobs = federation_.OpenStore().ListJobs("alice", {}, 100);
  ASSERT_TRUE(jobs.ok());
  EXPECT_TRUE(jobs->empty());
  // Others are still served.
  Identity bob = federation_.Enroll(broker::Role::kConsumer, "bob");
  EXPECT_TRUE(federation_.ConnectClient(bob)->ListJobs().ok());
}

TEST_F(SecurityTest, SecondBrokerOnTheSameDatabaseIsRefusedNamingTheFirst) {
  broker::BrokerOptions options;
  options.broker_id = "hub";
  options.database_path = federation_.db_path();
  options.endpoint = "tcp://127.0.0.1:0";
  auto second = broker::Broker::Create(options, MustGenerateIdentity("hub"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use by another broker"));
  EXPECT_THAT(second.status().message(),
              HasSubstr("pid " + std::to_string(::getpid())));
  ExpectBrokerServes();
}

class UsageReportTest : public SecurityTest {
 protected:
  void SetUp() override {
    provider_ = federation_.Enroll(broker::Role::kProvider, "raw-site");
    channel_ = RegisterRawProvider(provider_);
    client_ = federation_.ConnectClient(alice_);
    v1::JobSpec spec = ShellJob("true", 2);
    spec.set_max_duration_s(3600);
    auto submitted = client_->Submit(spec);
    ASSERT_TRUE(submitted.ok());
    job_id_ = submitted->job_id();
    auto offer = NextReply(*channel_);
    ASSERT_TRUE(offer.has_value());
    ASSERT_EQ(offer->type(), v1::MESSAGE_TYPE_PLACEMENT_OFFER);
  }

  v1::UsageRecord Record() const {
    v1::UsageRecord record;
    record.set_record_id(job_id_ + ":final");
    record.set_job_id(job_id_);
    record.set_provider("raw-site");
    record.set_model("A800");
    record.set_cards(2);
    record.set_start_ms(10'000);
    record.set_end_ms(1'810'000);  // 1800 s
    record.set_card_seconds(CardSecondsFor(2, 10'000, 1'810'000));
    return record;
  }

  v1::Envelope Report(const v1::UsageReport& report) {
    EXPECT_TRUE(channel_->Send(v1::MESSAGE_TYPE_USAGE_REPORT,
                               channel_->NextRequestId(), report)
                    .ok());
    auto reply = NextReply(*channel_);
    EXPECT_TRUE(reply.has_value());
    return reply.value_or(v1::Envelope());
  }

  // Usage charges in the ledger (besides them it holds the consumer's
  // top-up and the job's hold).
  size_t LedgerEntries() {
    ledger::Ledger ledger(federation_.OpenStore().database());
    auto entries = ledger.Entries();
    EXPECT_TRUE(entries.ok());
    if (!entries.ok()) return 0;
    size_t usage = 0;
    for (const auto& entry : *entries) usage += entry.kind() == "usage";
    return usage;
  }

  Identity provider_ = MustGenerateIdentity("unused");
  std::unique_ptr<DealerChannel> channel_;
  std::unique_ptr<consumer::Client> client_;
  std::string job_id_;
};

TEST_F(UsageReportTest, BadSignatureIsRejectedAndPostsNothing) {
  auto report = SignUsageRecord(provider_.signing_key(), Record());
  ASSERT_TRUE(report.ok());
  std::string signature = report->signature();
  signature[10] ^= 0x01;
  report->set_signature(signature);
  v1::Envelope reply = Report(*report);
  EXPECT_EQ(reply.status().code(), v1::Status::UNAUTHENTICATED);
  EXPECT_EQ(LedgerEntries(), 0u);

  // Signed by someone else's key: also rejected.
  Identity other = MustGenerateIdentity("other");
  auto forged = SignUsageRecord(other.signing_key(), Record());
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(Report(*forged).status().code(), v1::Status::UNAUTHENTICATED);
  EXPECT_EQ(LedgerEntries(), 0u);
  auto job = client_->GetJob(job_id_);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->charged(), 0);
}

TEST_F(UsageReportTest, RevokedProviderOnAnOpenConnectionIsNotPaid) {
  ASSERT_TRUE(
      federation_.OpenStore().Revoke(broker::Role::kProvider, "raw-site").ok());
  // Within a tick or two the broker refuses everything from it and drops
  // its connection (an empty offer update is harmless to repeat until
  // then)...
  EXPECT_TRUE(WaitUntil(
      [&] {
        (void)channel_->Send(v1::MESSAGE_TYPE_UPDATE_OFFER,
                             channel_->NextRequestId(), v1::UpdateOffer());
        auto reply = NextReply(*channel_, 500);
        return !reply || reply->status().code() == v1::Status::PERMISSION_DENIED;
      },
      std::chrono::seconds(5)));
  // ... usage included: its signed record is not paid (refused, or not
  // even answered on a connection the broker dropped).
  auto report = SignUsageRecord(provider_.signing_key(), Record());
  ASSERT_TRUE(report.ok());
  (void)channel_->Send(v1::MESSAGE_TYPE_USAGE_REPORT, channel_->NextRequestId(),
                       *report);
  auto refused = NextReply(*channel_, 1000);
  if (refused) {
    EXPECT_EQ(refused->status().code(), v1::Status::PERMISSION_DENIED);
  }
  EXPECT_EQ(LedgerEntries(), 0u);
  auto job = client_->GetJob(job_id_);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->charged(), 0);
}

TEST_F(UsageReportTest, SameRecordTwicePostsOnce) {
  auto report = SignUsageRecord(provider_.signing_key(), Record());
  ASSERT_TRUE(report.ok());
  v1::Envelope first = Report(*report);
  ASSERT_EQ(first.status().code(), v1::Status::OK) << first.status().message();
  auto first_body = DecodeBody<v1::UsageReportReply>(first);
  ASSERT_TRUE(first_body.ok());
  EXPECT_FALSE(first_body->duplicate());
  // 2 cards x 1800 s at 1000 per card-hour = 1000.
  EXPECT_EQ(first_body->amount(), 1000);

  v1::Envelope second = Report(*report);
  ASSERT_EQ(second.status().code(), v1::Status::OK);
  auto second_body = DecodeBody<v1::UsageReportReply>(second);
  ASSERT_TRUE(second_body.ok());
  EXPECT_TRUE(second_body->duplicate());
  EXPECT_EQ(second_body->amount(), 1000);
  EXPECT_EQ(LedgerEntries(), 1u);

  // A different record for the same job is refused: no double charge.
  v1::UsageRecord again = Record();
  again.set_record_id(job_id_ + ":second");
  auto second_record = SignUsageRecord(provider_.signing_key(), again);
  ASSERT_TRUE(second_record.ok());
  EXPECT_EQ(Report(*second_record).status().code(), v1::Status::ALREADY_EXISTS);
  EXPECT_EQ(LedgerEntries(), 1u);

  ledger::Ledger ledger(federation_.OpenStore().database());
  EXPECT_EQ(*ledger.Balance(ledger::ConsumerAccount("alice")),
            kTestConsumerFunds - 1000);
  EXPECT_TRUE(ledger::VerifyLedger(federation_.OpenStore().database()).ok());
}

TEST_F(UsageReportTest, ChargeIsCappedAtTheMaxDurationAskedFor) {
  v1::UsageRecord record = Record();
  record.set_end_ms(record.start_ms() + 7200 * 1000);  // 2 h on a 1 h job
  record.set_card_seconds(CardSecondsFor(2, record.start_ms(), record.end_ms()));
  auto report = SignUsageRecord(provider_.signing_key(), record);
  ASSERT_TRUE(report.ok());
  v1::Envelope reply = Report(*report);
  ASSERT_EQ(reply.status().code(), v1::Status::OK) << reply.status().message();
  // Billed 2 cards x 3600 s at 1000 per card-hour, not 2 x 7200 s.
  EXPECT_EQ(DecodeBody<v1::UsageReportReply>(reply)->amount(), 2000);
  auto job = client_->GetJob(job_id_);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->card_seconds(), 7200u);
  EXPECT_TRUE(ledger::VerifyLedger(federation_.OpenStore().database()).ok());
}

// Hostile-input finding: start = INT64_MIN, end = INT64_MAX, card_seconds
// = 0 was accepted and every later record of the placement was refused as
// ALREADY_EXISTS. Unbounded or future intervals are refused; the placement
// is still billed by its real record afterwards.
TEST_F(UsageReportTest, UnboundedOrFutureIntervalIsRefusedAndPoisonsNothing) {
  v1::UsageRecord unbounded = Record();
  unbounded.set_record_id(job_id_ + ":huge");
  unbounded.set_start_ms(INT64_MIN);
  unbounded.set_end_ms(INT64_MAX);
  unbounded.set_card_seconds(0);
  auto huge = SignUsageRecord(provider_.signing_key(), unbounded);
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ(Report(*huge).status().code(), v1::Status::INVALID_ARGUMENT);

  v1::UsageRecord future = Record();
  future.set_record_id(job_id_ + ":future");
  const int64_t now = SystemClock::Shared()->NowMs();
  future.set_start_ms(now);
  future.set_end_ms(now + int64_t{24} * 3600 * 1000);
  future.set_card_seconds(CardSecondsFor(2, future.start_ms(), future.end_ms()));
  auto ahead = SignUsageRecord(provider_.signing_key(), future);
  ASSERT_TRUE(ahead.ok());
  v1::Envelope refused = Report(*ahead);
  EXPECT_EQ(refused.status().code(), v1::Status::INVALID_ARGUMENT);
  EXPECT_THAT(refused.status().message(), HasSubstr("in the future"));
  EXPECT_EQ(LedgerEntries(), 0u);

  auto real = SignUsageRecord(provider_.signing_key(), Record());
  ASSERT_TRUE(real.ok());
  v1::Envelope posted = Report(*real);
  ASSERT_EQ(posted.status().code(), v1::Status::OK) << posted.status().message();
  EXPECT_EQ(DecodeBody<v1::UsageReportReply>(posted)->amount(), 1000);
  EXPECT_TRUE(ledger::VerifyLedger(federation_.OpenStore().database()).ok());
}

TEST_F(UsageReportTest, RecordThatDisagreesWithPlacementIsRejected) {
  v1::UsageRecord record = Record();
  record.set_cards(8);  // placed on 2
  record.set_card_seconds(CardSecondsFor(8, record.start_ms(), record.end_ms()));
  auto report = SignUsageRecord(provider_.signing_key(), record);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(Report(*report).status().code(), v1::Status::INVALID_ARGUMENT);

  v1::UsageRecord inflated = Record();
  inflated.set_card_seconds(inflated.card_seconds() * 10);
  auto inflated_report = SignUsageRecord(provider_.signing_key(), inflated);
  ASSERT_TRUE(inflated_report.ok());
  EXPECT_EQ(Report(*inflated_report).status().code(),
            v1::Status::INVALID_ARGUMENT);
  EXPECT_EQ(LedgerEntries(), 0u);
}

}  // namespace
}  // namespace computenet::testing
