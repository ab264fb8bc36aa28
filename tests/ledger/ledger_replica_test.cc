// Replication primitives between two brokers' real files: export, verified
// apply, cosigning, and fork detection when the origin shows a rewritten
// history under its own key.
#include "computenet/ledger/replica.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "computenet/ledger/ledger.h"
#include "computenet/ledger/checkpoints.h"
#include "computenet/common/checkpoint.h"
#include "ledger_fixture.h"

namespace computenet::ledger {
namespace {

using ::testing::HasSubstr;
using testing::kLedgerNowMs;
using testing::LedgerFixture;

class LedgerReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    origin_.MustTopUp("alice", 10'000, "t1");
    origin_.MustTopUp("bob", 10'000, "t2");
    job_ = origin_.Job("b-1", "alice", "site-a", 1, 600, 3600);
    origin_.MustHold(job_);
    origin_.MustPost(job_, "b-1:1", 0, 60'000, false);
    first_head_ = origin_.MustCheckpoint();  // 4 entries
    ASSERT_TRUE(replica_.Follow("hub", OriginKey().hex(), 0).ok());
  }

  const VerifyingKey& OriginKey() {
    return origin_.broker_identity().signing_key().verifying_key();
  }
  v1::LedgerStream Export(uint64_t from, uint32_t limit = 0) {
    auto stream = ExportLedger(origin_.database(), "hub", from, limit);
    EXPECT_TRUE(stream.ok()) << stream.status().ToString();
    return stream.ok() ? *stream : v1::LedgerStream();
  }

  LedgerFixture origin_;
  LedgerFixture peer_;  // the replicating broker's own file
  ReplicaStore replica_{peer_.database()};
  Identity peer_identity_ = testing::MustGenerateIdentity("hub-south");
  v1::JobInfo job_;
  v1::SignedCheckpoint first_head_;
};

TEST_F(LedgerReplicaTest, ReplicatesVerifiedEntriesIncrementally) {
  v1::LedgerStream stream = Export(1);
  EXPECT_EQ(stream.entries_size(), 4);
  EXPECT_EQ(stream.checkpoints_size(), 1);
  auto update = replica_.Apply(stream);
  ASSERT_TRUE(update.ok()) << update.status().ToString();
  EXPECT_EQ(update->appended, 4u);
  EXPECT_EQ(update->size, 4u);
  EXPECT_EQ(update->verified_size, 4u);
  EXPECT_EQ(update->checkpoints, 1u);

  origin_.MustPost(job_, "b-1:final", 60'000, 90'000, true);  // 5, 6
  origin_.MustTopUp("bob", 7, "t3");                           // 7
  origin_.MustCheckpoint();
  auto more = replica_.Apply(Export(5));
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  EXPECT_EQ(more->appended, 3u);
  EXPECT_EQ(*replica_.Size("hub"), 7u);
  EXPECT_EQ(more->verified_size, 7u);
  // A repeated or overlapping stream changes nothing.
  auto again = replica_.Apply(Export(3));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->appended, 0u);
  // The replica's leaves give the origin's signed head.
  auto leaves = replica_.LeafHashes("hub", 7);
  ASSERT_TRUE(leaves.ok());
  auto origin_leaves = LedgerLeafHashes(origin_.database(), 7);
  ASSERT_TRUE(origin_leaves.ok());
  EXPECT_EQ(*leaves, *origin_leaves);
}

TEST_F(LedgerReplicaTest, CosignedCheckpointIsStoredAtTheOrigin) {
  ASSERT_TRUE(replica_.Apply(Export(1)).ok());
  auto cosignature = replica_.Cosign("hub", first_head_,
                                     peer_identity_.signing_key(), "hub-south");
  ASSERT_TRUE(cosignature.ok()) << cosignature.status().ToString();
  EXPECT_TRUE(VerifyCosignature(peer_identity_.signing_key().verifying_key(),
                                first_head_, *cosignature)
                  .ok());
  ASSERT_TRUE(AddCosignature(origin_.database(), 4, *cosignature,
                             peer_identity_.signing_key().verifying_key())
                  .ok());
  auto report = VerifyLedger(origin_.database());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->cosignatures, 1u);

  // A checkpoint past what the replica holds is not cosigned yet.
  origin_.MustTopUp("bob", 7, "t3");
  v1::SignedCheckpoint ahead = origin_.MustCheckpoint();
  EXPECT_EQ(replica_.Cosign("hub", ahead, peer_identity_.signing_key(),
                            "hub-south")
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(LedgerReplicaTest, TamperedStreamsAreRefusedAndStoreNothing) {
  {
    v1::LedgerStream stream = Export(1);
    std::string bytes = stream.entries(1);
    bytes[bytes.size() - 3] = static_cast<char>(bytes[bytes.size() - 3] ^ 1);
    stream.set_entries(1, bytes);
    auto update = replica_.Apply(stream);
    EXPECT_EQ(update.status().code(), StatusCode::kDataLoss)
        << update.status().ToString();
  }
  {
    v1::LedgerStream stream = Export(1);
    std::string signature = stream.checkpoints(0).signature();
    signature[9] = static_cast<char>(signature[9] ^ 1);
    stream.mutable_checkpoints(0)->set_signature(signature);
    auto update = replica_.Apply(stream);
    EXPECT_EQ(update.status().code(), StatusCode::kDataLoss);
    EXPECT_THAT(update.status().message(), HasSubstr("signature"));
  }
  {
    // Entries dropped from the middle break the chain.
    v1::LedgerStream stream = Export(1);
    stream.mutable_entries()->DeleteSubrange(1, 1);
    stream.clear_checkpoints();
    auto update = replica_.Apply(stream);
    EXPECT_EQ(update.status().code(), StatusCode::kDataLoss);
    EXPECT_THAT(update.status().message(), HasSubstr("entry 2"));
  }
  EXPECT_EQ(*replica_.Size("hub"), 0u);
  // A stream that starts past the next entry, or from a stranger.
  EXPECT_EQ(replica_.Apply(Export(3)).status().code(),
            StatusCode::kFailedPrecondition);
  v1::LedgerStream stranger = Export(1);
  stranger.set_origin("hub-west");
  EXPECT_EQ(replica_.Apply(stranger).status().code(),
            StatusCode::kFailedPrecondition);
  // Following under a second key is refused: the first is pinned.
  EXPECT_EQ(replica_.Follow("hub", peer_identity_.signing_key()
                                       .verifying_key()
                                       .hex(),
                            0)
                .code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(replica_.Apply(Export(1)).ok());
  EXPECT_EQ(*replica_.Size("hub"), 4u);
}

TEST_F(LedgerReplicaTest, OriginShowingARewrittenHistoryIsCaughtWithEvidence) {
  ASSERT_TRUE(replica_.Apply(Export(1)).ok());
  // The origin's operator builds another history of its ledger under the
  // same key (here: a second file), where bob never topped up but carol's
  // money went elsewhere, and signs a longer head over it.
  LedgerFixture rewritten;
  // Same broker key: copy the origin's identity into the rewritten file.
  ASSERT_TRUE(rewritten.database().SetMeta(kMetaBrokerKey, OriginKey().hex()).ok());
  rewritten.MustTopUp("alice", 10'000, "t1");
  rewritten.MustTopUp("bob", 9'000, "t2");  // differs from entry 2
  v1::JobInfo job = rewritten.Job("b-1", "alice", "site-a", 1, 600, 3600);
  rewritten.MustHold(job);
  rewritten.MustPost(job, "b-1:1", 0, 60'000, false);
  rewritten.MustTopUp("alice", 1, "t3");
  Checkpointer forger(rewritten.database(), "hub",
                      origin_.broker_identity().signing_key(), {0, 0});
  auto forged_head = forger.CheckpointNow(kLedgerNowMs);
  ASSERT_TRUE(forged_head.ok() && forged_head->has_value());
  auto forged_stream = ExportLedger(rewritten.database(), "hub", 1, 0);
  ASSERT_TRUE(forged_stream.ok());

  v1::ForkEvidence evidence;
  auto update = replica_.Apply(*forged_stream, &evidence);
  EXPECT_EQ(update.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(update.status().message(), HasSubstr("fork"));
  EXPECT_TRUE(VerifyForkEvidence(OriginKey(), evidence).ok());
  EXPECT_EQ(evidence.origin(), "hub");
  EXPECT_EQ(*replica_.Size("hub"), 4u);  // nothing of it was stored

  // Met alone (e.g. in a statement), that longer head cannot be judged
  // from the four entries held: the replica says so rather than guess.
  EXPECT_EQ(replica_.Check("hub", **forged_head).status().code(),
            StatusCode::kFailedPrecondition);
  // The honest head is not.
  auto honest = replica_.Check("hub", first_head_);
  ASSERT_TRUE(honest.ok());
  EXPECT_FALSE(honest->has_value());
  // And the replica refuses to cosign the forged one.
  EXPECT_FALSE(replica_
                   .Cosign("hub", **forged_head, peer_identity_.signing_key(),
                           "hub-south")
                   .ok());
}

TEST_F(LedgerReplicaTest, SameSizeForkIsCaughtFromSignaturesAlone) {
  ASSERT_TRUE(replica_.Apply(Export(1)).ok());
  v1::Checkpoint other;
  other.set_broker_id("hub");
  other.set_tree_size(4);
  other.set_root_hash(std::string(32, 'x'));
  other.set_head_hash(std::string(32, 'y'));
  other.set_timestamp_ms(kLedgerNowMs);
  auto signed_other =
      SignCheckpoint(origin_.broker_identity().signing_key(), other);
  ASSERT_TRUE(signed_other.ok());
  auto checked = replica_.Check("hub", *signed_other);
  ASSERT_TRUE(checked.ok());
  ASSERT_TRUE(checked->has_value());
  EXPECT_THAT((*checked)->explanation(), HasSubstr("same 4 entries"));
  // Signed by anyone else, it is not the origin's statement at all.
  auto unsigned_other = SignCheckpoint(peer_identity_.signing_key(), other);
  EXPECT_EQ(replica_.Check("hub", *unsigned_other).status().code(),
            StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace computenet::ledger
