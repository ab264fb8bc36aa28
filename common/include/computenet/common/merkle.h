// Merkle trees as Certificate Transparency defines them (RFC 6962 §2.1):
// the tree head over a list of leaves, audit paths (inclusion proofs) and
// consistency proofs, and the checks a verifier runs on them (the
// algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2). The ledger's checkpoints
// sign such a tree head, so anyone holding one entry and its audit path can
// check that the entry is in the signed history, and anyone holding two
// checkpoints can check that the later one extends the earlier one.
//
//   leaf hash  = SHA-256(0x00 || leaf data)
//   inner node = SHA-256(0x01 || left || right)
//   empty tree = SHA-256("")
//
// Functions taking "leaf hashes" want leaves already hashed with LeafHash.
//
// Thread safety: stateless functions, and a MerkleTree is immutable after
// construction; all may be used from several threads at once.
#ifndef COMPUTENET_COMMON_MERKLE_H_
#define COMPUTENET_COMMON_MERKLE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "computenet/common/status.h"

namespace computenet::merkle {

// SHA-256(0x00 || data).
std::string LeafHash(std::string_view data);
// SHA-256(0x01 || left || right).
std::string NodeHash(std::string_view left, std::string_view right);
// SHA-256 of nothing: the head of a tree with no leaves.
std::string EmptyRoot();

// The tree head (MTH) over leaf_hashes[0, size). INVALID_ARGUMENT if size
// exceeds the leaves given.
StatusOr<std::string> RootOf(const std::vector<std::string>& leaf_hashes,
                             uint64_t size);

// All levels of one tree, built once (O(n) hashes) so that many proofs can
// be answered in O(log n) each, as a statement with many lines needs.
class MerkleTree {
 public:
  explicit MerkleTree(std::vector<std::string> leaf_hashes);

  uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  // The head of the whole tree.
  std::string Root() const;
  // The head of the first `size` leaves (an earlier tree). INVALID_ARGUMENT
  // if size > size().
  StatusOr<std::string> RootAt(uint64_t size) const;
  // Audit path for leaf `index` in the tree of the first tree_size leaves,
  // bottom up. INVALID_ARGUMENT unless index < tree_size <= size().
  StatusOr<std::vector<std::string>> InclusionProof(uint64_t index,
                                                    uint64_t tree_size) const;
  // RFC 6962 PROOF(old_size, D[new_size]). INVALID_ARGUMENT unless
  // 0 < old_size <= new_size <= size(). Empty when old_size == new_size.
  StatusOr<std::vector<std::string>> ConsistencyProof(uint64_t old_size,
                                                      uint64_t new_size) const;

 private:
  // MTH of leaves [begin, end), from the stored levels where it can.
  std::string RangeHash(uint64_t begin, uint64_t end) const;
  void SubProof(uint64_t m, uint64_t begin, uint64_t end, bool complete,
                std::vector<std::string>* out) const;

  // levels_[0] = leaf hashes; levels_[k][i] = hash of the 2^k leaves from
  // i * 2^k (only complete subtrees are stored).
  std::vector<std::vector<std::string>> levels_;
};

// The right edge of a growing tree: the heads of its perfect subtrees,
// largest first. Enough to compute the head after each append in O(log n)
// without keeping the leaves, as a broker checkpointing its ledger does.
class CompactRange {
 public:
  void Append(std::string leaf_hash);
  uint64_t size() const { return size_; }
  // The head of the tree of all leaves appended so far.
  std::string Root() const;

 private:
  uint64_t size_ = 0;
  std::vector<std::string> heads_;
};

// OK if `proof` leads from leaf_hash at `index` in a tree of tree_size
// leaves to `root`; UNAUTHENTICATED if it does not (wrong hash, wrong path
// length, index out of range).
Status VerifyInclusion(std::string_view leaf_hash, uint64_t index,
                       uint64_t tree_size,
                       const std::vector<std::string>& proof,
                       std::string_view root);

// OK if `proof` shows that the tree of new_size leaves with head new_root
// extends the tree of old_size leaves with head old_root; UNAUTHENTICATED
// otherwise. old_size == new_size needs an empty proof and equal roots;
// old_size 0 needs an empty proof.
Status VerifyConsistency(uint64_t old_size, uint64_t new_size,
                         std::string_view old_root, std::string_view new_root,
                         const std::vector<std::string>& proof);

}  // namespace computenet::merkle

#endif  // COMPUTENET_COMMON_MERKLE_H_
