// Net settlement statements between brokers: line-by-line comparison and
// the two signatures (docs/ledger.md, "Clearing").
#include "computenet/ledger/clearing_statement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace computenet::ledger {
namespace {

using ::testing::HasSubstr;

v1::SettlementLine Line(const std::string& job, const std::string& record,
                        int64_t amount) {
  v1::SettlementLine line;
  line.set_job_id(job);
  line.set_record_id(record);
  line.set_amount(amount);
  return line;
}

TEST(ClearingStatementTest, StatementIsSortedWithItsNet) {
  auto statement = MakeStatement(
      "north", "east",
      {Line("north-3", "north-3:final", 27), Line("north-1", "north-1:1", 5),
       Line("north-1", "north-1:final", 2)},
      1000);
  ASSERT_EQ(statement.lines_size(), 3);
  EXPECT_EQ(statement.lines(0).record_id(), "north-1:1");
  EXPECT_EQ(statement.lines(1).record_id(), "north-1:final");
  EXPECT_EQ(statement.lines(2).job_id(), "north-3");
  EXPECT_EQ(statement.net(), 34);
}

TEST(ClearingStatementTest, IdenticalBooksAgree) {
  auto statement = MakeStatement(
      "north", "east",
      {Line("north-1", "north-1:final", 5), Line("north-2", "north-2:final", 7)},
      1000);
  auto reply = CompareSettlement(
      statement,
      {Line("north-2", "north-2:final", 7), Line("north-1", "north-1:final", 5)});
  EXPECT_TRUE(reply.agreed());
  EXPECT_EQ(DescribeDifferences(reply, "north", "east"), "");
}

TEST(ClearingStatementTest, MismatchNamesEveryDifferingEntry) {
  auto statement = MakeStatement(
      "north", "east",
      {Line("north-1", "north-1:final", 5), Line("north-2", "north-2:final", 7),
       Line("north-4", "north-4:final", 1)},
      1000);
  auto reply = CompareSettlement(
      statement,
      {Line("north-1", "north-1:final", 5), Line("north-2", "north-2:final", 9),
       Line("north-3", "north-3:final", 27)});
  EXPECT_FALSE(reply.agreed());
  ASSERT_EQ(reply.only_at_debtor_size(), 1);
  EXPECT_EQ(reply.only_at_debtor(0).job_id(), "north-4");
  ASSERT_EQ(reply.only_at_creditor_size(), 1);
  EXPECT_EQ(reply.only_at_creditor(0).job_id(), "north-3");
  ASSERT_EQ(reply.amount_differs_size(), 1);
  EXPECT_EQ(reply.amount_differs(0).amount(), 9);  // the creditor's amount
  const std::string described = DescribeDifferences(reply, "north", "east");
  EXPECT_THAT(described, HasSubstr("only at north: north-4 north-4:final 1"));
  EXPECT_THAT(described, HasSubstr("only at east: north-3 north-3:final 27"));
  EXPECT_THAT(described, HasSubstr("amount at east: north-2 north-2:final 9"));
}

TEST(ClearingStatementTest, BothSignaturesCoverTheExactStatementBytes) {
  auto north = SigningKey::Generate();
  auto east = SigningKey::Generate();
  ASSERT_TRUE(north.ok() && east.ok());
  const std::string bytes =
      MakeStatement("north", "east", {Line("north-1", "north-1:final", 5)}, 1)
          .SerializeAsString();
  auto by_north = SignSettlement(*north, bytes);
  auto by_east = SignSettlement(*east, bytes);
  ASSERT_TRUE(by_north.ok() && by_east.ok());
  EXPECT_TRUE(VerifySettlementSignature(north->verifying_key().hex(), bytes,
                                        *by_north)
                  .ok());
  EXPECT_TRUE(
      VerifySettlementSignature(east->verifying_key().hex(), bytes, *by_east)
          .ok());
  // Not with the other broker's key, and not over other bytes.
  EXPECT_FALSE(
      VerifySettlementSignature(east->verifying_key().hex(), bytes, *by_north)
          .ok());
  const std::string other =
      MakeStatement("north", "east", {Line("north-1", "north-1:final", 6)}, 1)
          .SerializeAsString();
  EXPECT_FALSE(VerifySettlementSignature(north->verifying_key().hex(), other,
                                         *by_north)
                   .ok());
}

}  // namespace
}  // namespace computenet::ledger
