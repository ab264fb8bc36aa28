// Usage records: per-second metering, signing and verification.
#include "computenet/common/usage_record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "computenet/common/ed25519.h"

namespace computenet {
namespace {

using ::testing::HasSubstr;

TEST(CardSecondsForTest, StartedSecondCounts) {
  EXPECT_EQ(CardSecondsFor(1, 0, 1), 1u);
  EXPECT_EQ(CardSecondsFor(1, 0, 999), 1u);
  EXPECT_EQ(CardSecondsFor(1, 0, 1000), 1u);
  EXPECT_EQ(CardSecondsFor(1, 0, 1001), 2u);
  EXPECT_EQ(CardSecondsFor(1, 0, 2000), 2u);
  EXPECT_EQ(CardSecondsFor(1, 0, 3'600'000), 3600u);
}

TEST(CardSecondsForTest, IndependentOfEpoch) {
  const int64_t start = 1'700'000'000'123;
  EXPECT_EQ(CardSecondsFor(1, start, start + 1), 1u);
  EXPECT_EQ(CardSecondsFor(1, start, start + 1000), 1u);
  EXPECT_EQ(CardSecondsFor(1, start, start + 1001), 2u);
}

TEST(CardSecondsForTest, NoTimeNoCharge) {
  EXPECT_EQ(CardSecondsFor(8, 1000, 1000), 0u);
  EXPECT_EQ(CardSecondsFor(8, 1000, 999), 0u);
  EXPECT_EQ(CardSecondsFor(8, 5000, 0), 0u);
}

TEST(CardSecondsForTest, MultipliesByCards) {
  EXPECT_EQ(CardSecondsFor(4, 0, 1), 4u);
  EXPECT_EQ(CardSecondsFor(4, 0, 1001), 8u);
  EXPECT_EQ(CardSecondsFor(8, 0, 3'600'000), 8u * 3600u);
  EXPECT_EQ(CardSecondsFor(0, 0, 5000), 0u);
}

TEST(CardSecondsForTest, LargeValuesDoNotOverflow) {
  // 4 billion cards for 100 years stays within uint64.
  const int64_t century_ms = int64_t{100} * 365 * 24 * 3600 * 1000;
  const uint32_t cards = std::numeric_limits<uint32_t>::max();
  EXPECT_EQ(CardSecondsFor(cards, 0, century_ms),
            uint64_t{cards} * static_cast<uint64_t>(century_ms / 1000));
}

class UsageRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::make_unique<SigningKey>(std::move(*key));
    auto other = SigningKey::Generate();
    ASSERT_TRUE(other.ok());
    other_ = std::make_unique<SigningKey>(std::move(*other));

    record_.set_record_id("rec-1");
    record_.set_job_id("b-1");
    record_.set_provider("site-a");
    record_.set_model("A800");
    record_.set_cards(2);
    record_.set_start_ms(1'700'000'000'000);
    record_.set_end_ms(1'700'000'001'500);  // 1.5 s -> 2 s per card
    record_.set_card_seconds(4);
  }

  v1::UsageReport MustSign(const SigningKey& key,
                           const v1::UsageRecord& record) {
    auto report = SignUsageRecord(key, record);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : v1::UsageReport();
  }

  std::string hex() const { return key_->verifying_key().hex(); }

  std::unique_ptr<SigningKey> key_;
  std::unique_ptr<SigningKey> other_;
  v1::UsageRecord record_;
};

TEST_F(UsageRecordTest, SignThenVerify) {
  v1::UsageReport report = MustSign(*key_, record_);
  EXPECT_EQ(report.record(), record_.SerializeAsString());
  EXPECT_EQ(report.signature().size(), 64u);
  auto verified = VerifyUsageRecord(hex(), report.record(), report.signature());
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->record_id(), "rec-1");
  EXPECT_EQ(verified->job_id(), "b-1");
  EXPECT_EQ(verified->provider(), "site-a");
  EXPECT_EQ(verified->cards(), 2u);
  EXPECT_EQ(verified->card_seconds(), 4u);
}

TEST_F(UsageRecordTest, SignatureIsDomainSeparated) {
  v1::UsageReport report = MustSign(*key_, record_);
  const VerifyingKey& verifying = key_->verifying_key();
  EXPECT_TRUE(verifying
                  .Verify(DomainSeparated(kUsageRecordDomain, report.record()),
                          report.signature())
                  .ok());
  // Not a bare signature over the record bytes.
  EXPECT_FALSE(verifying.Verify(report.record(), report.signature()).ok());
}

TEST_F(UsageRecordTest, BareSignatureWithoutDomainIsRejected) {
  // A signature over the record without the domain prefix (e.g. produced
  // for another purpose) must not pass as a usage record signature.
  const std::string bytes = record_.SerializeAsString();
  auto bare = key_->Sign(bytes);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(VerifyUsageRecord(hex(), bytes, *bare).status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(UsageRecordTest, EveryTamperedByteIsUnauthenticated) {
  v1::UsageReport report = MustSign(*key_, record_);
  const std::string& bytes = report.record();
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string tampered = bytes;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    auto verified = VerifyUsageRecord(hex(), tampered, report.signature());
    EXPECT_EQ(verified.status().code(), StatusCode::kUnauthenticated)
        << "byte " << i;
  }
}

TEST_F(UsageRecordTest, TamperedFieldIsUnauthenticated) {
  v1::UsageReport report = MustSign(*key_, record_);
  v1::UsageRecord inflated = record_;
  inflated.set_end_ms(record_.end_ms() + 3'600'000);
  inflated.set_card_seconds(
      CardSecondsFor(2, inflated.start_ms(), inflated.end_ms()));
  EXPECT_EQ(VerifyUsageRecord(hex(), inflated.SerializeAsString(),
                              report.signature())
                .status()
                .code(),
            StatusCode::kUnauthenticated);
}

TEST_F(UsageRecordTest, SignatureByAnotherProviderIsUnauthenticated) {
  v1::UsageReport forged = MustSign(*other_, record_);
  auto verified =
      VerifyUsageRecord(hex(), forged.record(), forged.signature());
  EXPECT_EQ(verified.status().code(), StatusCode::kUnauthenticated);
  // And it verifies under the key that did sign it.
  EXPECT_TRUE(VerifyUsageRecord(other_->verifying_key().hex(), forged.record(),
                                forged.signature())
                  .ok());
}

TEST_F(UsageRecordTest, TruncatedSignatureIsUnauthenticated) {
  v1::UsageReport report = MustSign(*key_, record_);
  EXPECT_EQ(VerifyUsageRecord(hex(), report.record(),
                              report.signature().substr(0, 32))
                .status()
                .code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(VerifyUsageRecord(hex(), report.record(), "").status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(UsageRecordTest, BadPublicKeyIsInvalidArgument) {
  v1::UsageReport report = MustSign(*key_, record_);
  EXPECT_EQ(VerifyUsageRecord("not hex", report.record(), report.signature())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(UsageRecordTest, InconsistentCardSecondsIsInvalidArgument) {
  v1::UsageRecord record = record_;
  record.set_card_seconds(3);  // should be 4
  v1::UsageReport report = MustSign(*key_, record);
  auto verified = VerifyUsageRecord(hex(), report.record(), report.signature());
  EXPECT_EQ(verified.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(verified.status().message(), HasSubstr("card_seconds"));

  record.set_card_seconds(5);  // over-claims too
  report = MustSign(*key_, record);
  EXPECT_EQ(VerifyUsageRecord(hex(), report.record(), report.signature())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(UsageRecordTest, EndBeforeStartIsInvalidArgument) {
  v1::UsageRecord record = record_;
  record.set_end_ms(record.start_ms() - 1);
  record.set_card_seconds(0);
  v1::UsageReport report = MustSign(*key_, record);
  EXPECT_EQ(VerifyUsageRecord(hex(), report.record(), report.signature())
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(CardSecondsForTest, ExtremeTimesDoNotWrap) {
  // The signed difference overflowed and wrapped to 0 card-seconds.
  EXPECT_EQ(CardSecondsFor(1, INT64_MIN, INT64_MAX),
            (std::numeric_limits<uint64_t>::max() / 1000) + 1);
}

// Hostile-input finding: INT64_MIN .. INT64_MAX with card_seconds 0 passed.
TEST_F(UsageRecordTest, UnboundedIntervalsAndCardCountsAreInvalidArgument) {
  auto verify = [&](const v1::UsageRecord& record) {
    v1::UsageReport report = MustSign(*key_, record);
    return VerifyUsageRecord(hex(), report.record(), report.signature())
        .status()
        .code();
  };
  v1::UsageRecord extreme = record_;
  extreme.set_start_ms(INT64_MIN);
  extreme.set_end_ms(INT64_MAX);
  extreme.set_card_seconds(0);
  EXPECT_EQ(verify(extreme), StatusCode::kInvalidArgument);
  v1::UsageRecord past_2500 = record_;
  past_2500.set_end_ms(kMaxUsageTimestampMs + 1);
  past_2500.set_card_seconds(CardSecondsFor(2, past_2500.start_ms(),
                                            past_2500.end_ms()));
  EXPECT_EQ(verify(past_2500), StatusCode::kInvalidArgument);
  v1::UsageRecord too_long = record_;
  too_long.set_end_ms(too_long.start_ms() + kMaxUsageIntervalMs + 1);
  too_long.set_card_seconds(CardSecondsFor(2, too_long.start_ms(),
                                           too_long.end_ms()));
  EXPECT_EQ(verify(too_long), StatusCode::kInvalidArgument);
  v1::UsageRecord no_cards = record_;
  no_cards.set_cards(0);
  no_cards.set_card_seconds(0);
  EXPECT_EQ(verify(no_cards), StatusCode::kInvalidArgument);
  v1::UsageRecord longest = record_;
  longest.set_end_ms(longest.start_ms() + kMaxUsageIntervalMs);
  longest.set_card_seconds(CardSecondsFor(2, longest.start_ms(),
                                          longest.end_ms()));
  EXPECT_EQ(verify(longest), StatusCode::kOk);
}

TEST_F(UsageRecordTest, MissingIdentifiersAreInvalidArgument) {
  for (int field = 0; field < 3; ++field) {
    v1::UsageRecord record = record_;
    if (field == 0) record.clear_record_id();
    if (field == 1) record.clear_job_id();
    if (field == 2) record.clear_provider();
    v1::UsageReport report = MustSign(*key_, record);
    EXPECT_EQ(VerifyUsageRecord(hex(), report.record(), report.signature())
                  .status()
                  .code(),
              StatusCode::kInvalidArgument)
        << "field " << field;
  }
}

TEST_F(UsageRecordTest, SignedGarbageIsInvalidArgument) {
  // Correctly signed bytes that are not a UsageRecord.
  const std::string garbage("\xff\xff\xff\xff", 4);
  auto signature = key_->Sign(DomainSeparated(kUsageRecordDomain, garbage));
  ASSERT_TRUE(signature.ok());
  EXPECT_EQ(VerifyUsageRecord(hex(), garbage, *signature).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(UsageRecordTest, ZeroDurationRecordVerifies) {
  v1::UsageRecord record = record_;
  record.set_end_ms(record.start_ms());
  record.set_card_seconds(0);
  v1::UsageReport report = MustSign(*key_, record);
  auto verified = VerifyUsageRecord(hex(), report.record(), report.signature());
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->card_seconds(), 0u);
}

}  // namespace
}  // namespace computenet
