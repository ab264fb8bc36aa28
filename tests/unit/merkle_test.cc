// RFC 6962 Merkle trees: tree heads, audit paths and consistency proofs
// against the Certificate Transparency test vectors (the eight leaves of
// RFC 6962's reference tests; the expected hashes were computed by hand
// from the RFC's recursive definitions), and the verifiers against every
// proof of small trees, genuine and corrupted.
#include "computenet/common/merkle.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "computenet/common/sha256.h"

namespace computenet::merkle {
namespace {

std::string Hex(const std::string& bytes) { return HexEncode(bytes); }

std::string Unhex(const std::string& hex) {
  std::string out;
  EXPECT_TRUE(HexDecode(hex, &out)) << hex;
  return out;
}

// The leaves of CT's reference tree.
std::vector<std::string> TestLeaves() {
  std::vector<std::string> leaves;
  for (const char* hex : {"", "00", "10", "2021", "3031", "40414243",
                          "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f"}) {
    leaves.push_back(LeafHash(Unhex(hex)));
  }
  return leaves;
}

std::vector<std::string> First(const std::vector<std::string>& leaves,
                               size_t n) {
  return std::vector<std::string>(leaves.begin(),
                                  leaves.begin() + static_cast<long>(n));
}

std::vector<std::string> Hexes(const std::vector<std::string>& hashes) {
  std::vector<std::string> out;
  for (const auto& hash : hashes) out.push_back(Hex(hash));
  return out;
}

// Leaves of n distinct entries, for exhaustive checks.
std::vector<std::string> Leaves(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(LeafHash("entry " + std::to_string(i)));
  return out;
}

TEST(MerkleTest, HashesAreDomainSeparated) {
  EXPECT_EQ(Hex(EmptyRoot()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(LeafHash("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  // A leaf is not the hash of its data, and a node is not a leaf of the
  // concatenation: second-preimage resistance by construction.
  EXPECT_NE(LeafHash("ab"), Sha256("ab"));
  EXPECT_NE(NodeHash("a", "b"), LeafHash("ab"));
}

TEST(MerkleTest, TreeHeadsOfTheReferenceTree) {
  const std::vector<std::string> expected = {
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
  };
  const auto leaves = TestLeaves();
  MerkleTree tree(leaves);
  for (size_t n = 0; n <= 8; ++n) {
    auto root = tree.RootAt(n);
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(Hex(*root), expected[n]) << n << " leaves";
    EXPECT_EQ(Hex(*RootOf(leaves, n)), expected[n]) << n << " leaves";
    EXPECT_EQ(Hex(MerkleTree(First(leaves, n)).Root()), expected[n]);
    CompactRange range;
    for (size_t i = 0; i < n; ++i) range.Append(leaves[i]);
    EXPECT_EQ(Hex(range.Root()), expected[n]) << n << " leaves";
  }
  EXPECT_EQ(tree.RootAt(9).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RootOf(leaves, 9).status().code(), StatusCode::kInvalidArgument);
}

TEST(MerkleTest, AuditPathsOfTheReferenceTree) {
  MerkleTree tree(TestLeaves());
  struct Case {
    uint64_t index;
    uint64_t size;
    std::vector<std::string> path;
  };
  const std::vector<Case> cases = {
      {0, 1, {}},
      {0, 8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5, 8,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 3,
       {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {3, 4,
       {"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
      {5, 6,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
  };
  const auto leaves = TestLeaves();
  for (const auto& c : cases) {
    auto path = tree.InclusionProof(c.index, c.size);
    ASSERT_TRUE(path.ok()) << path.status().ToString();
    EXPECT_EQ(Hexes(*path), c.path) << "leaf " << c.index << " of " << c.size;
    EXPECT_TRUE(VerifyInclusion(leaves[c.index], c.index, c.size, *path,
                                *tree.RootAt(c.size))
                    .ok());
  }
  EXPECT_EQ(tree.InclusionProof(8, 8).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(tree.InclusionProof(0, 9).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(MerkleTest, ConsistencyProofsOfTheReferenceTree) {
  MerkleTree tree(TestLeaves());
  struct Case {
    uint64_t old_size;
    uint64_t new_size;
    std::vector<std::string> proof;
  };
  const std::vector<Case> cases = {
      {1, 1, {}},
      {1, 8,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6, 8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2, 5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
      {3, 7,
       {"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"}},
      {4, 8,
       {"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
  };
  for (const auto& c : cases) {
    auto proof = tree.ConsistencyProof(c.old_size, c.new_size);
    ASSERT_TRUE(proof.ok()) << proof.status().ToString();
    EXPECT_EQ(Hexes(*proof), c.proof) << c.old_size << " -> " << c.new_size;
    EXPECT_TRUE(VerifyConsistency(c.old_size, c.new_size,
                                  *tree.RootAt(c.old_size),
                                  *tree.RootAt(c.new_size), *proof)
                    .ok())
        << c.old_size << " -> " << c.new_size;
  }
  EXPECT_EQ(tree.ConsistencyProof(0, 3).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(tree.ConsistencyProof(5, 3).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(tree.ConsistencyProof(3, 9).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(MerkleTest, EveryInclusionProofOfSmallTreesVerifiesAndNoCorruptionDoes) {
  const auto leaves = Leaves(33);
  MerkleTree tree(leaves);
  for (uint64_t size = 1; size <= 33; ++size) {
    const std::string root = *tree.RootAt(size);
    ASSERT_EQ(root, *RootOf(leaves, size));
    for (uint64_t index = 0; index < size; ++index) {
      auto path = tree.InclusionProof(index, size);
      ASSERT_TRUE(path.ok());
      ASSERT_TRUE(VerifyInclusion(leaves[index], index, size, *path, root).ok())
          << index << "/" << size;
      // Another leaf, another position, a shorter or longer path, a flipped
      // bit: all refused.
      EXPECT_FALSE(
          VerifyInclusion(leaves[(index + 1) % 33], index, size, *path, root)
              .ok());
      if (size > 1) {
        EXPECT_FALSE(VerifyInclusion(leaves[index], (index + 1) % size, size,
                                     *path, root)
                         .ok());
      }
      // (A path does not always pin the tree size: leaf 0 of 3 and of 4
      // have paths of one shape. The size is bound by the signed checkpoint.)
      auto longer = *path;
      longer.push_back(leaves[0]);
      EXPECT_FALSE(VerifyInclusion(leaves[index], index, size, longer, root).ok());
      if (!path->empty()) {
        auto shorter = *path;
        shorter.pop_back();
        EXPECT_FALSE(
            VerifyInclusion(leaves[index], index, size, shorter, root).ok());
        auto flipped = *path;
        flipped[0][0] = static_cast<char>(flipped[0][0] ^ 1);
        EXPECT_FALSE(
            VerifyInclusion(leaves[index], index, size, flipped, root).ok());
      }
    }
    EXPECT_FALSE(VerifyInclusion(leaves[0], size, size, {}, root).ok());
  }
}

TEST(MerkleTest, EveryConsistencyProofOfSmallTreesVerifiesAndForksDoNot) {
  const auto leaves = Leaves(24);
  MerkleTree tree(leaves);
  // The same sizes over a history that differs in one leaf.
  auto forked_leaves = leaves;
  forked_leaves[3] = LeafHash("rewritten");
  MerkleTree forked(forked_leaves);
  for (uint64_t old_size = 1; old_size <= 24; ++old_size) {
    for (uint64_t new_size = old_size; new_size <= 24; ++new_size) {
      auto proof = tree.ConsistencyProof(old_size, new_size);
      ASSERT_TRUE(proof.ok());
      const std::string old_root = *tree.RootAt(old_size);
      const std::string new_root = *tree.RootAt(new_size);
      ASSERT_TRUE(
          VerifyConsistency(old_size, new_size, old_root, new_root, *proof).ok())
          << old_size << " -> " << new_size;
      // A new head over a rewritten history does not extend the old head.
      if (old_size > 3) {
        auto fork_proof = forked.ConsistencyProof(old_size, new_size);
        EXPECT_FALSE(VerifyConsistency(old_size, new_size, old_root,
                                       *forked.RootAt(new_size), *fork_proof)
                         .ok())
            << old_size << " -> " << new_size;
      }
      if (!proof->empty()) {
        auto flipped = *proof;
        flipped.back()[5] = static_cast<char>(flipped.back()[5] ^ 1);
        EXPECT_FALSE(
            VerifyConsistency(old_size, new_size, old_root, new_root, flipped)
                .ok());
        EXPECT_FALSE(VerifyConsistency(old_size, new_size, new_root, new_root,
                                       *proof)
                         .ok());
      }
    }
  }
  EXPECT_TRUE(VerifyConsistency(0, 5, EmptyRoot(), *tree.RootAt(5), {}).ok());
  EXPECT_FALSE(VerifyConsistency(6, 5, *tree.RootAt(6), *tree.RootAt(5), {}).ok());
  EXPECT_FALSE(
      VerifyConsistency(5, 5, *tree.RootAt(5), *forked.RootAt(5), {}).ok());
}

TEST(MerkleTest, CompactRangeFollowsTheTreeAsItGrows) {
  const auto leaves = Leaves(130);
  CompactRange range;
  EXPECT_EQ(range.Root(), EmptyRoot());
  for (size_t i = 0; i < leaves.size(); ++i) {
    range.Append(leaves[i]);
    ASSERT_EQ(range.size(), i + 1);
    ASSERT_EQ(range.Root(), *RootOf(leaves, i + 1)) << i + 1 << " leaves";
  }
}

}  // namespace
}  // namespace computenet::merkle
