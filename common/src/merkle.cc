#include "computenet/common/merkle.h"

#include "computenet/common/sha256.h"

namespace computenet::merkle {
namespace {

// The largest power of two strictly below n (n >= 2): RFC 6962's split
// point k.
uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

int Log2(uint64_t n) {
  int log = 0;
  while ((uint64_t{1} << log) < n) ++log;
  return log;
}

Status Mismatch(std::string what) {
  return UnauthenticatedError(std::move(what));
}

}  // namespace

std::string LeafHash(std::string_view data) {
  std::string input;
  input.reserve(data.size() + 1);
  input.push_back('\0');
  input.append(data);
  return Sha256(input);
}

std::string NodeHash(std::string_view left, std::string_view right) {
  std::string input;
  input.reserve(left.size() + right.size() + 1);
  input.push_back('\x01');
  input.append(left);
  input.append(right);
  return Sha256(input);
}

std::string EmptyRoot() { return Sha256(""); }

MerkleTree::MerkleTree(std::vector<std::string> leaf_hashes) {
  levels_.push_back(std::move(leaf_hashes));
  while (levels_.back().size() >= 2) {
    const auto& below = levels_.back();
    std::vector<std::string> level;
    level.reserve(below.size() / 2);
    for (size_t i = 0; i + 1 < below.size(); i += 2) {
      level.push_back(NodeHash(below[i], below[i + 1]));
    }
    levels_.push_back(std::move(level));
  }
}

std::string MerkleTree::RangeHash(uint64_t begin, uint64_t end) const {
  const uint64_t n = end - begin;
  if (n == 0) return EmptyRoot();
  // Ranges reached from the root by RFC 6962's split are aligned to their
  // size when that size is a power of two: the stored level has them.
  if (IsPowerOfTwo(n) && begin % n == 0) {
    return levels_[static_cast<size_t>(Log2(n))][begin / n];
  }
  const uint64_t k = SplitPoint(n);
  return NodeHash(RangeHash(begin, begin + k), RangeHash(begin + k, end));
}

std::string MerkleTree::Root() const { return RangeHash(0, size()); }

StatusOr<std::string> MerkleTree::RootAt(uint64_t tree_size) const {
  if (tree_size > size()) {
    return InvalidArgumentError("tree of " + std::to_string(tree_size) +
                                " leaves asked of " + std::to_string(size()));
  }
  return RangeHash(0, tree_size);
}

StatusOr<std::vector<std::string>> MerkleTree::InclusionProof(
    uint64_t index, uint64_t tree_size) const {
  if (tree_size > size() || index >= tree_size) {
    return InvalidArgumentError("no leaf " + std::to_string(index) +
                                " in a tree of " + std::to_string(tree_size) +
                                " (" + std::to_string(size()) + " known)");
  }
  // RFC 6962 PATH(m, D[n]), iteratively: descend from the root, remember
  // each sibling, and return them bottom up.
  std::vector<std::string> top_down;
  uint64_t begin = 0;
  uint64_t end = tree_size;
  while (end - begin > 1) {
    const uint64_t k = SplitPoint(end - begin);
    if (index - begin < k) {
      top_down.push_back(RangeHash(begin + k, end));
      end = begin + k;
    } else {
      top_down.push_back(RangeHash(begin, begin + k));
      begin += k;
    }
  }
  return std::vector<std::string>(top_down.rbegin(), top_down.rend());
}

void MerkleTree::SubProof(uint64_t m, uint64_t begin, uint64_t end,
                          bool complete, std::vector<std::string>* out) const {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!complete) out->push_back(RangeHash(begin, end));
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    SubProof(m, begin, begin + k, complete, out);
    out->push_back(RangeHash(begin + k, end));
  } else {
    SubProof(m - k, begin + k, end, false, out);
    out->push_back(RangeHash(begin, begin + k));
  }
}

StatusOr<std::vector<std::string>> MerkleTree::ConsistencyProof(
    uint64_t old_size, uint64_t new_size) const {
  if (old_size == 0 || old_size > new_size || new_size > size()) {
    return InvalidArgumentError(
        "no consistency proof from " + std::to_string(old_size) + " to " +
        std::to_string(new_size) + " (" + std::to_string(size()) + " known)");
  }
  std::vector<std::string> proof;
  if (old_size < new_size) SubProof(old_size, 0, new_size, true, &proof);
  return proof;
}

void CompactRange::Append(std::string leaf_hash) {
  // Each trailing 1 bit of the old size is a perfect subtree the new leaf
  // completes: merge it in.
  std::string node = std::move(leaf_hash);
  for (uint64_t bits = size_; (bits & 1) == 1; bits >>= 1) {
    node = NodeHash(heads_.back(), node);
    heads_.pop_back();
  }
  heads_.push_back(std::move(node));
  ++size_;
}

std::string CompactRange::Root() const {
  if (heads_.empty()) return EmptyRoot();
  std::string root = heads_.back();
  for (size_t i = heads_.size() - 1; i-- > 0;) root = NodeHash(heads_[i], root);
  return root;
}

StatusOr<std::string> RootOf(const std::vector<std::string>& leaf_hashes,
                             uint64_t size) {
  if (size > leaf_hashes.size()) {
    return InvalidArgumentError("tree of " + std::to_string(size) +
                                " leaves asked of " +
                                std::to_string(leaf_hashes.size()));
  }
  MerkleTree tree(std::vector<std::string>(
      leaf_hashes.begin(), leaf_hashes.begin() + static_cast<long>(size)));
  return tree.Root();
}

Status VerifyInclusion(std::string_view leaf_hash, uint64_t index,
                       uint64_t tree_size,
                       const std::vector<std::string>& proof,
                       std::string_view root) {
  if (index >= tree_size) {
    return Mismatch("leaf " + std::to_string(index) +
                    " is outside a tree of " + std::to_string(tree_size));
  }
  // RFC 9162 §2.1.3.2.
  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (sn == 0) return Mismatch("inclusion proof is too long");
    if ((fn & 1) == 1 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("inclusion proof is too short");
  if (r != root) {
    return Mismatch("inclusion proof does not lead to the tree head");
  }
  return OkStatus();
}

Status VerifyConsistency(uint64_t old_size, uint64_t new_size,
                         std::string_view old_root, std::string_view new_root,
                         const std::vector<std::string>& proof) {
  if (old_size > new_size) {
    return Mismatch("a tree of " + std::to_string(new_size) +
                    " cannot extend one of " + std::to_string(old_size));
  }
  if (old_size == new_size) {
    if (!proof.empty()) return Mismatch("proof between equal sizes must be empty");
    if (old_root != new_root) return Mismatch("two heads for one tree size");
    return OkStatus();
  }
  if (old_size == 0) {
    if (!proof.empty()) return Mismatch("proof from the empty tree must be empty");
    if (old_root != EmptyRoot()) return Mismatch("wrong head for the empty tree");
    return OkStatus();
  }
  if (proof.empty()) return Mismatch("consistency proof is empty");
  // RFC 9162 §2.1.4.2.
  std::vector<std::string> path;
  if (IsPowerOfTwo(old_size)) path.emplace_back(old_root);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while ((fn & 1) == 1) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr = path[0];
  std::string sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const std::string& c = path[i];
    if (sn == 0) return Mismatch("consistency proof is too long");
    if ((fn & 1) == 1 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Mismatch("consistency proof is too short");
  if (fr != old_root) {
    return Mismatch("consistency proof does not lead to the older head");
  }
  if (sr != new_root) {
    return Mismatch("consistency proof does not lead to the newer head");
  }
  return OkStatus();
}

}  // namespace computenet::merkle
