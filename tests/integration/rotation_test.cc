// Key rotation (issue 12, item 3): a party rotates to a new key with an
// optional overlap; when the old key retires, a running broker drops its
// open connections and refuses it at the handshake, while the new key keeps
// the party's account and jobs. Pinned peers accept a peer's next key. All
// over real CURVE sockets against a real broker; the operator's side runs
// on a second connection to the broker's file (as the CLI does) or as the
// real computenet-broker binary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zmq.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>

#include "computenet/broker/broker_config.h"
#include "computenet/common/transport.h"
#include "computenet/common/usage_record.h"
#include "computenet/ledger/ledger.h"
#include "computenet/v1/peer.pb.h"
#include "test_support.h"

namespace computenet::testing {
namespace {

using ::testing::HasSubstr;

// What the channel's own socket monitor (DealerChannel::ConnectionError)
// concludes about one client connection. A socket has one monitor, and the
// channel's is attached before it connects, so the test reads its verdict
// rather than attaching a second one (which would replace it): the broker
// dropped the connection and refused its reconnect at the handshake (ZAP
// 400) once the verdict is UNAUTHENTICATED; OK while the connection stands
// (or is being retried).
class SocketEvents {
 public:
  SocketEvents(zmq::context_t&, DealerChannel& channel) : channel_(channel) {}

  // Whether the connection was dropped and its reconnect refused by the
  // broker's ZAP handler. Reads pending monitor events; never blocks.
  bool Refused() {
    return channel_.ConnectionError().code() == StatusCode::kUnauthenticated;
  }

 private:
  DealerChannel& channel_;
};

class RotationTest : public ::testing::Test {
 protected:
  RotationTest() : context_(1) {}

  std::unique_ptr<DealerChannel> Raw(const Identity& identity) {
    DealerOptions options;
    options.endpoint = federation_.broker().endpoint();
    options.server_public_key =
        federation_.broker_identity().curve().public_z85;
    options.client_keys = identity.curve();
    options.send_timeout_ms = 1000;
    auto channel = DealerChannel::Connect(context_, options);
    EXPECT_TRUE(channel.ok());
    return std::move(*channel);
  }

  std::optional<v1::Envelope> NextReply(DealerChannel& channel,
                                        int timeout_ms = 3000) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      auto received = channel.Receive(50);
      if (!received.ok() || !received->has_value()) continue;
      if ((*received)->type() == v1::MESSAGE_TYPE_HEARTBEAT) continue;
      return **received;
    }
    return std::nullopt;
  }

  // One ListJobs on a raw channel; its reply's status, UNAVAILABLE if none.
  v1::Status::Code ListOn(DealerChannel& channel, int timeout_ms = 3000) {
    (void)channel.Send(v1::MESSAGE_TYPE_LIST_JOBS, channel.NextRequestId(),
                       v1::ListJobs());
    auto reply = NextReply(channel, timeout_ms);
    return reply ? reply->status().code() : v1::Status::UNAVAILABLE;
  }

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

  consumer::ClientOptions QuickClientOptions() {
    consumer::ClientOptions options;
    options.broker_endpoint = federation_.broker().endpoint();
    options.broker_public_key =
        federation_.broker_identity().curve().public_z85;
    options.request_timeout_ms = 500;
    options.retries = 0;
    return options;
  }

  int64_t Now() const { return SystemClock::Shared()->NowMs(); }

  zmq::context_t context_;
  Federation federation_;
  Identity alice_ = federation_.Enroll(broker::Role::kConsumer, "alice");
};

TEST_F(RotationTest, BothKeysWorkDuringTheOverlapThenOnlyTheNewOne) {
  auto old_client = federation_.ConnectClient(alice_);
  auto submitted = old_client->Submit(ShellJob("true"));  // no provider: queued
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  const std::string job_id = submitted->job_id();
  auto old_raw = Raw(alice_);
  SocketEvents old_events(context_, *old_raw);
  ASSERT_EQ(ListOn(*old_raw), v1::Status::OK);

  // The operator rotates alice to a new key, with an hour of overlap.
  Identity new_alice = MustGenerateIdentity("alice");
  ASSERT_TRUE(federation_.OpenStore()
                  .RotateKey(broker::Role::kConsumer, new_alice.Public(), Now(),
                             3'600'000)
                  .ok());
  auto new_client = federation_.ConnectClient(new_alice);
  // Same party: the job submitted on the old key, and the same account.
  auto seen = new_client->GetJob(job_id);
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->consumer(), "alice");
  auto listed = new_client->ListJobs();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  auto old_statement = old_client->GetStatement(v1::GetStatement());
  auto new_statement = new_client->GetStatement(v1::GetStatement());
  ASSERT_TRUE(old_statement.ok()) << old_statement.status().ToString();
  ASSERT_TRUE(new_statement.ok()) << new_statement.status().ToString();
  EXPECT_EQ(new_statement->account(), "consumer:alice");
  EXPECT_GE(new_statement->lines_size(), 1);  // the fixture's top-up
  EXPECT_EQ(new_statement->lines_size(), old_statement->lines_size());
  // The old key still works during the overlap.
  EXPECT_TRUE(old_client->ListJobs().ok());
  EXPECT_EQ(ListOn(*old_raw), v1::Status::OK);
  auto second = new_client->Submit(ShellJob("true"));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(old_client->GetJob(second->job_id()).ok());

  // The operator ends the overlap: the old key's open connection is
  // dropped, and its reconnection is refused at the handshake.
  auto retired = federation_.OpenStore().EndOverlap(broker::Role::kConsumer,
                                                    "alice", Now());
  ASSERT_TRUE(retired.ok());
  EXPECT_EQ(*retired, 1);
  EXPECT_TRUE(WaitUntil([&] { return old_events.Refused(); },
                        std::chrono::seconds(10)));
  EXPECT_EQ(ListOn(*old_raw, 1000), v1::Status::UNAVAILABLE);
  EXPECT_TRUE(WaitUntil(
      [&] { return old_events.Refused(); },
      std::chrono::seconds(10)));
  auto fresh_old = consumer::Client::Connect(QuickClientOptions(), alice_);
  ASSERT_TRUE(fresh_old.ok());
  EXPECT_EQ((*fresh_old)->ListJobs().status().code(), StatusCode::kUnauthenticated);
  // The new key's connection was not touched, and still sees both jobs.
  auto after = new_client->ListJobs();
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->size(), 2u);
  EXPECT_TRUE(new_client->Cancel(job_id).ok());
}

TEST_F(RotationTest, OverlapEndsByItselfAndTheOldConnectionIsDropped) {
  auto old_raw = Raw(alice_);
  SocketEvents old_events(context_, *old_raw);
  ASSERT_EQ(ListOn(*old_raw), v1::Status::OK);
  Identity new_alice = MustGenerateIdentity("alice");
  ASSERT_TRUE(
      federation_.OpenStore()
          .RotateKey(broker::Role::kConsumer, new_alice.Public(), Now(), 1000)
          .ok());
  auto new_raw = Raw(new_alice);
  ASSERT_EQ(ListOn(*new_raw), v1::Status::OK);
  // Once the second has passed, the old key's connection goes and stays gone.
  EXPECT_TRUE(WaitUntil([&] { return old_events.Refused(); },
                        std::chrono::seconds(15)));
  EXPECT_TRUE(WaitUntil(
      [&] { return old_events.Refused(); },
      std::chrono::seconds(10)));
  EXPECT_NE(ListOn(*old_raw, 1000), v1::Status::OK);
  EXPECT_EQ(ListOn(*new_raw), v1::Status::OK);
}

TEST_F(RotationTest,
       ProviderRotatedWithoutOverlapIsDroppedAtOnceAndKeepsItsRecords) {
  Identity old_site = federation_.Enroll(broker::Role::kProvider, "raw-site");
  auto old_channel = RegisterRawProvider(old_site);
  SocketEvents old_events(context_, *old_channel);
  auto client = federation_.ConnectClient(alice_);
  v1::JobSpec spec = ShellJob("true", 2);
  spec.set_max_duration_s(3600);
  auto submitted = client->Submit(spec);
  ASSERT_TRUE(submitted.ok());
  auto offer = NextReply(*old_channel);
  ASSERT_TRUE(offer.has_value());
  ASSERT_EQ(offer->type(), v1::MESSAGE_TYPE_PLACEMENT_OFFER);

  Identity new_site = MustGenerateIdentity("raw-site");
  ASSERT_TRUE(
      federation_.OpenStore()
          .RotateKey(broker::Role::kProvider, new_site.Public(), Now(), 0)
          .ok());
  EXPECT_TRUE(WaitUntil([&] { return old_events.Refused(); },
                        std::chrono::seconds(10)));
  EXPECT_TRUE(WaitUntil(
      [&] { return old_events.Refused(); },
      std::chrono::seconds(10)));
  (void)old_channel->Send(v1::MESSAGE_TYPE_UPDATE_OFFER,
                          old_channel->NextRequestId(), v1::UpdateOffer());
  EXPECT_FALSE(NextReply(*old_channel, 1000).has_value());

  // On its new key the site reports usage it signed with its old key (as an
  // agent's outbox resends it after a restart): still its record, paid.
  auto new_channel = Raw(new_site);
  v1::UsageRecord record;
  record.set_record_id(submitted->job_id() + ":final");
  record.set_job_id(submitted->job_id());
  record.set_provider("raw-site");
  record.set_model("A800");
  record.set_cards(2);
  record.set_start_ms(10'000);
  record.set_end_ms(1'810'000);
  record.set_card_seconds(CardSecondsFor(2, 10'000, 1'810'000));
  auto report = SignUsageRecord(old_site.signing_key(), record);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(new_channel
                  ->Send(v1::MESSAGE_TYPE_USAGE_REPORT,
                         new_channel->NextRequestId(), *report)
                  .ok());
  auto reply = NextReply(*new_channel);
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->status().code(), v1::Status::OK)
      << reply->status().message();
  EXPECT_EQ(DecodeBody<v1::UsageReportReply>(*reply)->amount(), 1000);
  // It registers again under the same name, and the audit accepts the
  // record under the key the site held when it signed it.
  RegisterRawProvider(new_site);
  auto audit = ledger::VerifyLedger(federation_.OpenStore().database());
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  EXPECT_EQ(audit->usage_records, 1u);
}

// Revocation (of the party, every key) drops its open connections as a
// retirement does; its other parties' connections stay.
TEST_F(RotationTest, RevokedPartysOpenConnectionsAreDroppedOnEveryKey) {
  Identity new_alice = MustGenerateIdentity("alice");
  ASSERT_TRUE(federation_.OpenStore()
                  .RotateKey(broker::Role::kConsumer, new_alice.Public(), Now(),
                             3'600'000)
                  .ok());
  auto old_raw = Raw(alice_);
  auto new_raw = Raw(new_alice);
  SocketEvents old_events(context_, *old_raw);
  SocketEvents new_events(context_, *new_raw);
  ASSERT_EQ(ListOn(*old_raw), v1::Status::OK);
  ASSERT_EQ(ListOn(*new_raw), v1::Status::OK);
  Identity bob = federation_.Enroll(broker::Role::kConsumer, "bob");
  auto bob_raw = Raw(bob);
  SocketEvents bob_events(context_, *bob_raw);
  ASSERT_EQ(ListOn(*bob_raw), v1::Status::OK);

  ASSERT_TRUE(federation_.OpenStore().Revoke(broker::Role::kConsumer, "alice").ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return old_events.Refused() &&
               new_events.Refused();
      },
      std::chrono::seconds(10)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return old_events.Refused() &&
               new_events.Refused();
      },
      std::chrono::seconds(10)));
  EXPECT_EQ(ListOn(*new_raw, 1000), v1::Status::UNAVAILABLE);
  EXPECT_EQ(ListOn(*bob_raw), v1::Status::OK);
  EXPECT_FALSE(bob_events.Refused());
}

TEST_F(RotationTest, RotationRefusesUnknownRevokedAndTakenKeys) {
  broker::Store& store = federation_.OpenStore();
  Identity bob = federation_.Enroll(broker::Role::kConsumer, "bob");
  Identity stranger = MustGenerateIdentity("carol");
  Status unknown =
      store.RotateKey(broker::Role::kConsumer, stranger.Public(), Now(), 0);
  EXPECT_EQ(unknown.code(), StatusCode::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("not enrolled"));
  // Rotating alice to bob's key, or to her own, or as another role.
  PublicIdentity bobs_key = bob.Public();
  bobs_key.name = "alice";
  Status taken = store.RotateKey(broker::Role::kConsumer, bobs_key, Now(), 0);
  EXPECT_EQ(taken.code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(taken.message(), HasSubstr("consumer 'bob'"));
  EXPECT_EQ(store.RotateKey(broker::Role::kConsumer, alice_.Public(), Now(), 0)
                .code(),
            StatusCode::kAlreadyExists);
  Identity new_alice = MustGenerateIdentity("alice");
  EXPECT_EQ(
      store.RotateKey(broker::Role::kProvider, new_alice.Public(), Now(), 0)
          .code(),
      StatusCode::kNotFound);
  EXPECT_EQ(
      store.RotateKey(broker::Role::kConsumer, new_alice.Public(), Now(), -1)
          .code(),
      StatusCode::kInvalidArgument);
  ASSERT_TRUE(store.Revoke(broker::Role::kConsumer, "bob").ok());
  Identity new_bob = MustGenerateIdentity("bob");
  Status revoked =
      store.RotateKey(broker::Role::kConsumer, new_bob.Public(), Now(), 0);
  EXPECT_EQ(revoked.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(revoked.message(), HasSubstr("revoked"));
  // Nothing was bound: the new keys are still strangers to the broker.
  auto fresh = consumer::Client::Connect(QuickClientOptions(), new_bob);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->ListJobs().status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(federation_.ConnectClient(alice_)->ListJobs().ok());
}

// The operator's commands, as the real binary: exit codes from the one
// table (common/exit_codes.h) and the states `enrollments` prints.
TEST_F(RotationTest, OperatorCommandsRotateRetireAndListKeyStates) {
  TempDir keys;
  auto write = [&](const Identity& identity, const std::string& dir) {
    EXPECT_TRUE(identity.Save(keys.File(dir)).ok());
    return keys.File(dir) + "/identity.pub";
  };
  const std::string db = federation_.db_path();
  auto broker_cli = [&](std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), COMPUTENET_BROKER_BIN);
    out->clear();
    return RunCommand(args, {}, out);
  };
  std::string out;
  const std::string carol = write(MustGenerateIdentity("carol"), "carol");
  EXPECT_EQ(broker_cli({"enroll", "--db", db, "--role", "consumer",
                        "--identity", carol, "--rotate"},
                       &out),
            3)
      << out;
  EXPECT_THAT(out, HasSubstr("not enrolled"));
  EXPECT_EQ(broker_cli({"enroll", "--db", db, "--role", "consumer",
                        "--identity", carol, "--overlap-s", "5"},
                       &out),
            2)
      << out;
  Identity bob = federation_.Enroll(broker::Role::kConsumer, "bob");
  const std::string bob_pub = write(bob, "bob");
  EXPECT_EQ(broker_cli({"enroll", "--db", db, "--role", "consumer",
                        "--identity", bob_pub, "--name", "alice", "--rotate"},
                       &out),
            6)
      << out;
  EXPECT_THAT(out, HasSubstr("already enrolled for consumer 'bob'"));

  Identity new_alice = MustGenerateIdentity("alice");
  const std::string new_pub = write(new_alice, "alice-next");
  ASSERT_EQ(
      broker_cli({"enroll", "--db", db, "--role", "consumer", "--identity",
                  new_pub, "--rotate", "--overlap-s", "600"},
                 &out),
      0)
      << out;
  ASSERT_EQ(broker_cli({"enrollments", "--db", db}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(alice_.curve().public_z85 + "\tretiring until "));
  EXPECT_THAT(out, HasSubstr(new_alice.curve().public_z85 + "\tactive"));
  EXPECT_TRUE(federation_.ConnectClient(new_alice)->ListJobs().ok());
  ASSERT_EQ(broker_cli(
                {"retire", "--db", db, "--role", "consumer", "--name", "alice"},
                &out),
            0)
      << out;
  ASSERT_EQ(broker_cli({"enrollments", "--db", db}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(alice_.curve().public_z85 + "\tretired"));
  auto old_client = consumer::Client::Connect(QuickClientOptions(), alice_);
  ASSERT_TRUE(old_client.ok());
  EXPECT_EQ((*old_client)->ListJobs().status().code(),
            StatusCode::kUnauthenticated);

  // Revocation is of the party: every key it holds.
  ASSERT_EQ(broker_cli(
                {"revoke", "--db", db, "--role", "consumer", "--name", "alice"},
                &out),
            0)
      << out;
  ASSERT_EQ(broker_cli({"enrollments", "--db", db}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(alice_.curve().public_z85 + "\trevoked"));
  EXPECT_THAT(out, HasSubstr(new_alice.curve().public_z85 + "\trevoked"));
  const std::string newest = write(MustGenerateIdentity("alice"), "alice-3");
  EXPECT_EQ(broker_cli({"enroll", "--db", db, "--role", "consumer",
                        "--identity", newest, "--rotate"},
                       &out),
            6)
      << out;
  EXPECT_THAT(out, HasSubstr("revoked"));
}

// A pinned peer's next key (its own rotation, prepared with
// `computenet-broker keygen --rekey-from`): the config loads it, the broker
// admits the peer on either key, and a key that keeps the name but not the
// signing key is refused at load.
class PeerNextKeyTest : public ::testing::Test {
 protected:
  static std::string WriteConfig(const TempDir& dir, const std::string& peer) {
    std::ofstream config(dir.File("hub.toml"));
    config << "broker_id = \"hub\"\nregion = \"north\"\n"
           << "endpoint = \"tcp://127.0.0.1:0\"\ndatabase = \"hub.db\"\n"
           << "keys = \"keys/hub\"\n"
           << peer;
    return dir.File("hub.toml");
  }
};

TEST_F(PeerNextKeyTest, ConfigLoadsTheNextKeyOnlyWithTheSameNameAndSigningKey) {
  TempDir dir;
  Identity west = MustGenerateIdentity("west");
  auto next = west.WithNewCurveKey();
  ASSERT_TRUE(next.ok());
  ASSERT_TRUE(west.Save(dir.File("keys/west")).ok());
  ASSERT_TRUE(next->Save(dir.File("keys/west-next")).ok());
  EXPECT_EQ(next->signing_key().verifying_key().hex(),
            west.signing_key().verifying_key().hex());
  EXPECT_NE(next->curve().public_z85, west.curve().public_z85);
  const std::string peer =
      "[[peers]]\nbroker_id = \"west\"\nregion = \"west\"\n"
      "endpoint = \"tcp://127.0.0.1:1\"\nidentity = "
      "\"keys/west/identity.pub\"\n";
  auto loaded = broker::LoadBrokerConfig(WriteConfig(
      dir, peer + "next_identity = \"keys/west-next/identity.pub\"\n"));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ(loaded->options.peers.size(), 1u);
  EXPECT_EQ(loaded->options.peers[0].curve_public, west.curve().public_z85);
  EXPECT_EQ(loaded->options.peers[0].next_curve_public,
            next->curve().public_z85);

  // A fresh keygen changes the signing key too: refused, saying why.
  ASSERT_TRUE(
      MustGenerateIdentity("west").Save(dir.File("keys/west-other")).ok());
  auto other = broker::LoadBrokerConfig(WriteConfig(
      dir, peer + "next_identity = \"keys/west-other/identity.pub\"\n"));
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(other.status().message(), HasSubstr("signing key"));
  ASSERT_TRUE(MustGenerateIdentity("east").Save(dir.File("keys/east")).ok());
  auto wrong_name = broker::LoadBrokerConfig(
      WriteConfig(dir, peer + "next_identity = \"keys/east/identity.pub\"\n"));
  EXPECT_EQ(wrong_name.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_name.status().message(), HasSubstr("'east'"));
}

TEST_F(PeerNextKeyTest, BrokerAdmitsThePeerOnEitherPinnedKey) {
  Identity west = MustGenerateIdentity("west");
  auto next = west.WithNewCurveKey();
  ASSERT_TRUE(next.ok());
  Identity unpinned = MustGenerateIdentity("west");
  broker::BrokerOptions options;
  options.broker_id = "hub";
  broker::PeerConfig peer;
  peer.broker_id = "west";
  peer.region = "west";
  peer.endpoint = "tcp://127.0.0.1:1";  // nobody: the outgoing link retries
  peer.curve_public = west.curve().public_z85;
  peer.ed25519_public = west.signing_key().verifying_key().hex();
  peer.next_curve_public = next->curve().public_z85;
  options.peers.push_back(peer);
  Federation federation(options);
  zmq::context_t context(1);
  auto hello = [&](const Identity& as) {
    DealerOptions dealer;
    dealer.endpoint = federation.broker().endpoint();
    dealer.server_public_key = federation.broker_identity().curve().public_z85;
    dealer.client_keys = as.curve();
    dealer.send_timeout_ms = 1000;
    auto channel = DealerChannel::Connect(context, dealer);
    EXPECT_TRUE(channel.ok());
    v1::PeerHello body;
    body.set_broker_id("west");
    body.set_region("west");
    (void)(*channel)->Send(v1::MESSAGE_TYPE_PEER_HELLO,
                           (*channel)->NextRequestId(), body);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      auto received = (*channel)->Receive(50);
      if (!received.ok() || !received->has_value()) continue;
      if ((*received)->type() != v1::MESSAGE_TYPE_PEER_HELLO_REPLY) continue;
      return (*received)->status().code();
    }
    return v1::Status::UNAVAILABLE;
  };
  EXPECT_EQ(hello(west), v1::Status::OK);
  EXPECT_EQ(hello(*next), v1::Status::OK);
  EXPECT_EQ(hello(unpinned), v1::Status::UNAVAILABLE);
  auto keys = federation.OpenStore().ListEnrollments();
  ASSERT_TRUE(keys.ok());
  int peer_keys = 0;
  for (const auto& key : *keys) peer_keys += key.role == broker::Role::kPeer;
  EXPECT_EQ(peer_keys, 2);
}

}  // namespace
}  // namespace computenet::testing
