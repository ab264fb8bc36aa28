// Checkpoint signatures, cosignatures, entry proofs and fork evidence, as a
// regulator, a party or a peer broker checks them with nothing but a
// broker's public key.
#include "computenet/common/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "computenet/common/merkle.h"
#include "computenet/common/sha256.h"

namespace computenet {
namespace {

using ::testing::HasSubstr;

SigningKey MustKey() {
  auto key = SigningKey::Generate();
  EXPECT_TRUE(key.ok());
  return *key;
}

// A toy ledger: entries as bytes, their leaves, a tree.
struct Ledger {
  std::vector<std::string> entries;
  std::vector<std::string> leaves;

  explicit Ledger(int n, const std::string& tag = "") {
    for (int i = 1; i <= n; ++i) Add(i, tag);
  }
  void Add(int sequence, const std::string& tag = "") {
    v1::LedgerEntry entry;
    entry.set_sequence(static_cast<uint64_t>(sequence));
    entry.set_kind("topup");
    entry.set_idempotency_key("k" + std::to_string(sequence) + tag);
    entries.push_back(entry.SerializeAsString());
    leaves.push_back(EntryLeafHash(entries.back()));
  }
  v1::Checkpoint At(uint64_t size, int64_t time = 1000) const {
    v1::Checkpoint checkpoint;
    checkpoint.set_broker_id("hub-north");
    checkpoint.set_tree_size(size);
    checkpoint.set_root_hash(*merkle::RootOf(leaves, size));
    checkpoint.set_head_hash(size == 0 ? std::string(32, '\0')
                                       : Sha256(entries[size - 1]));
    checkpoint.set_timestamp_ms(time);
    return checkpoint;
  }
};

TEST(CheckpointTest, SignedCheckpointVerifiesOnlyUnderItsKey) {
  SigningKey broker = MustKey();
  SigningKey other = MustKey();
  Ledger ledger(5);
  auto signed_cp = SignCheckpoint(broker, ledger.At(5));
  ASSERT_TRUE(signed_cp.ok());
  auto verified = VerifyCheckpoint(broker.verifying_key(), *signed_cp);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->tree_size(), 5u);
  EXPECT_EQ(verified->broker_id(), "hub-north");

  EXPECT_EQ(VerifyCheckpoint(other.verifying_key(), *signed_cp).status().code(),
            StatusCode::kUnauthenticated);
  auto forged = *signed_cp;
  std::string signature = forged.signature();
  signature[3] = static_cast<char>(signature[3] ^ 0x40);
  forged.set_signature(signature);
  EXPECT_EQ(VerifyCheckpoint(broker.verifying_key(), forged).status().code(),
            StatusCode::kUnauthenticated);
  // Same signature, other bytes (a bigger tree claimed).
  auto grown = *signed_cp;
  grown.set_checkpoint(ledger.At(4).SerializeAsString());
  EXPECT_EQ(VerifyCheckpoint(broker.verifying_key(), grown).status().code(),
            StatusCode::kUnauthenticated);
  // A usage-record signature over the same bytes is not a checkpoint
  // signature: the domains differ.
  auto usage_signature = broker.Sign(
      DomainSeparated("computenet.v1.UsageRecord", signed_cp->checkpoint()));
  ASSERT_TRUE(usage_signature.ok());
  auto replayed = *signed_cp;
  replayed.set_signature(*usage_signature);
  EXPECT_EQ(VerifyCheckpoint(broker.verifying_key(), replayed).status().code(),
            StatusCode::kUnauthenticated);
}

TEST(CheckpointTest, CosignatureIsAnotherBrokersSignatureOverTheSameBytes) {
  SigningKey origin = MustKey();
  SigningKey peer = MustKey();
  SigningKey stranger = MustKey();
  auto signed_cp = SignCheckpoint(origin, Ledger(3).At(3));
  ASSERT_TRUE(signed_cp.ok());
  auto cosignature = CosignCheckpoint(peer, "hub-south", *signed_cp);
  ASSERT_TRUE(cosignature.ok());
  EXPECT_EQ(cosignature->broker_id(), "hub-south");
  EXPECT_EQ(cosignature->ed25519_public(), peer.verifying_key().hex());
  EXPECT_TRUE(VerifyCosignature(peer.verifying_key(), *signed_cp, *cosignature)
                  .ok());
  EXPECT_EQ(VerifyCosignature(stranger.verifying_key(), *signed_cp,
                              *cosignature)
                .code(),
            StatusCode::kUnauthenticated);
  auto other_cp = SignCheckpoint(origin, Ledger(4).At(4));
  EXPECT_EQ(
      VerifyCosignature(peer.verifying_key(), *other_cp, *cosignature).code(),
      StatusCode::kUnauthenticated);
}

class EntryProofTest : public ::testing::Test {
 protected:
  v1::EntryProof ProofOf(uint64_t sequence, uint64_t size) {
    v1::EntryProof proof;
    proof.set_entry(ledger_.entries[sequence - 1]);
    merkle::MerkleTree tree(
        std::vector<std::string>(ledger_.leaves.begin(),
                                 ledger_.leaves.begin() + static_cast<long>(size)));
    auto path = tree.InclusionProof(sequence - 1, size);
    EXPECT_TRUE(path.ok());
    proof.mutable_inclusion()->set_leaf_index(sequence - 1);
    proof.mutable_inclusion()->set_tree_size(size);
    for (const auto& hash : *path) proof.mutable_inclusion()->add_hashes(hash);
    *proof.mutable_checkpoint() = *SignCheckpoint(broker_, ledger_.At(size));
    return proof;
  }

  SigningKey broker_ = MustKey();
  Ledger ledger_{11};
};

TEST_F(EntryProofTest, EveryEntryIsProvenAgainstTheCheckpoint) {
  for (uint64_t sequence = 1; sequence <= 11; ++sequence) {
    auto entry = VerifyEntryProof(broker_.verifying_key(), ProofOf(sequence, 11));
    ASSERT_TRUE(entry.ok()) << sequence << ": " << entry.status().ToString();
    EXPECT_EQ(entry->sequence(), sequence);
  }
}

TEST_F(EntryProofTest, TamperedProofsAreRefused) {
  const v1::EntryProof good = ProofOf(6, 11);
  {
    auto proof = good;  // one byte of the entry
    std::string entry = proof.entry();
    entry[entry.size() - 1] = static_cast<char>(entry.back() ^ 1);
    proof.set_entry(entry);
    auto verified = VerifyEntryProof(broker_.verifying_key(), proof);
    EXPECT_FALSE(verified.ok());
  }
  {
    auto proof = good;  // one hash of the path
    std::string hash = proof.inclusion().hashes(1);
    hash[0] = static_cast<char>(hash[0] ^ 1);
    proof.mutable_inclusion()->set_hashes(1, hash);
    auto verified = VerifyEntryProof(broker_.verifying_key(), proof);
    EXPECT_EQ(verified.status().code(), StatusCode::kUnauthenticated);
    EXPECT_THAT(verified.status().message(), HasSubstr("tree head"));
  }
  {
    // Entry 7's bytes with entry 6's path: the leaf index is checked
    // against the entry's own sequence.
    auto proof = good;
    proof.set_entry(ledger_.entries[6]);
    EXPECT_FALSE(VerifyEntryProof(broker_.verifying_key(), proof).ok());
  }
  {
    auto proof = good;  // signed by someone else
    *proof.mutable_checkpoint() = *SignCheckpoint(MustKey(), ledger_.At(11));
    auto verified = VerifyEntryProof(broker_.verifying_key(), proof);
    EXPECT_EQ(verified.status().code(), StatusCode::kUnauthenticated);
    EXPECT_THAT(verified.status().message(), HasSubstr("signature"));
  }
  {
    auto proof = good;  // a path for another tree size
    proof.mutable_inclusion()->set_tree_size(10);
    EXPECT_FALSE(VerifyEntryProof(broker_.verifying_key(), proof).ok());
  }
  {
    // An entry that is not in the signed history at all.
    Ledger other(11, "-forged");
    auto proof = good;
    proof.set_entry(other.entries[5]);
    EXPECT_FALSE(VerifyEntryProof(broker_.verifying_key(), proof).ok());
  }
}

TEST(ForkTest, SameSizeDifferentHeadsIsAForkOnTheirOwn) {
  SigningKey broker = MustKey();
  Ledger honest(6);
  Ledger rewritten(6, "-rewritten");
  auto a = SignCheckpoint(broker, honest.At(6));
  auto b = SignCheckpoint(broker, rewritten.At(6, 2000));
  auto fork = DetectFork(broker.verifying_key(), "hub-north", *a, *b, {});
  ASSERT_TRUE(fork.ok()) << fork.status().ToString();
  ASSERT_TRUE(fork->has_value());
  EXPECT_THAT((*fork)->explanation(), HasSubstr("same 6 entries"));
  EXPECT_TRUE(VerifyForkEvidence(broker.verifying_key(), **fork).ok());
  // Another broker's key does not make it evidence against this one.
  EXPECT_FALSE(VerifyForkEvidence(MustKey().verifying_key(), **fork).ok());

  // Two signatures of the same head are no fork.
  auto again = SignCheckpoint(broker, honest.At(6, 5000));
  auto none = DetectFork(broker.verifying_key(), "hub-north", *a, *again, {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(ForkTest, LaterHeadThatDoesNotExtendTheEarlierIsAFork) {
  SigningKey broker = MustKey();
  Ledger honest(9);
  Ledger rewritten(4);  // entries 1..4 the same, then a different 5..9
  for (int i = 5; i <= 9; ++i) rewritten.Add(i, "-other");
  auto early = SignCheckpoint(broker, honest.At(7));
  auto late = SignCheckpoint(broker, rewritten.At(9));
  // Without the leaves of the larger tree, nothing can be decided.
  EXPECT_EQ(DetectFork(broker.verifying_key(), "hub-north", *early, *late, {})
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  auto fork = DetectFork(broker.verifying_key(), "hub-north", *early, *late,
                         rewritten.leaves);
  ASSERT_TRUE(fork.ok()) << fork.status().ToString();
  ASSERT_TRUE(fork->has_value());
  EXPECT_EQ((*fork)->leaf_hashes_size(), 9);
  EXPECT_TRUE(VerifyForkEvidence(broker.verifying_key(), **fork).ok());

  // An honest later head extends the earlier one: no fork.
  auto honest_late = SignCheckpoint(broker, honest.At(9));
  auto none = DetectFork(broker.verifying_key(), "hub-north", *early,
                         *honest_late, honest.leaves);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // Shared prefix only: a head over entries 1..4 is consistent with both.
  auto prefix = SignCheckpoint(broker, honest.At(4));
  auto prefix_fork = DetectFork(broker.verifying_key(), "hub-north", *prefix,
                                *late, rewritten.leaves);
  ASSERT_TRUE(prefix_fork.ok());
  EXPECT_FALSE(prefix_fork->has_value());

  // Evidence that proves nothing is refused.
  v1::ForkEvidence bogus;
  bogus.set_origin("hub-north");
  *bogus.mutable_first() = *early;
  *bogus.mutable_second() = *honest_late;
  for (const auto& leaf : honest.leaves) bogus.add_leaf_hashes(leaf);
  EXPECT_EQ(VerifyForkEvidence(broker.verifying_key(), bogus).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace computenet
