// SafeText: untrusted strings made fit for logs, replies and terminals.
#include "computenet/common/safe_text.h"

#include <gtest/gtest.h>

#include <string>

#include "computenet/common/envelope.h"
#include "computenet/common/status.h"

namespace computenet {
namespace {

TEST(SafeTextTest, PrintableAsciiAndUtf8PassUnchanged) {
  EXPECT_EQ(SafeText("job cn-1-42 'train' (8 x A800)"),
            "job cn-1-42 'train' (8 x A800)");
  EXPECT_EQ(SafeText("张北-1 ✓ 🚀"), "张北-1 ✓ 🚀");
}

TEST(SafeTextTest, NewlinesAndControlCharactersCannotForgeALine) {
  EXPECT_EQ(SafeText("ok\n2026-12-03T00:00:00.000 I [broker] forged"),
            "ok\\n2026-12-03T00:00:00.000 I [broker] forged");
  EXPECT_EQ(SafeText("a\rb\tc"), "a\\rb\\tc");
  EXPECT_EQ(SafeText(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(SafeText("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(SafeText("del\x7f"), "del\\x7f");
  // A backslash is escaped too, so an escaped form cannot be faked.
  EXPECT_EQ(SafeText("a\\nb"), "a\\\\nb");
}

TEST(SafeTextTest, InvalidUtf8AndC1ControlsAreEscapedByteByByte) {
  EXPECT_EQ(SafeText("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(SafeText("\xe4\xb8"), "\\xe4\\xb8");        // cut sequence
  EXPECT_EQ(SafeText("\xc0\xaf"), "\\xc0\\xaf");        // overlong '/'
  EXPECT_EQ(SafeText("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(SafeText("\xc2\x9b" "2J"), "\\xc2\\x9b2J");   // C1 CSI
}

TEST(SafeTextTest, LongInputIsCutAtACharacterAndSaysHowMuchWasLeftOut) {
  std::string huge(1 << 20, 'x');
  std::string safe = SafeText(huge, 100);
  EXPECT_EQ(safe, std::string(100, 'x') + "...[+" +
                      std::to_string((1 << 20) - 100) + " bytes]");
  // Never half a character or half an escape.
  EXPECT_EQ(SafeText("ab张", 4), "ab...[+3 bytes]");
  EXPECT_EQ(SafeText("ab\n", 3), "ab...[+1 bytes]");
}

TEST(SafeTextTest, StatusRepliesAreBoundedAndEscaped) {
  Status status = NotFoundError("no job " + std::string(1 << 20, 'j') + "\n");
  v1::Status proto = StatusToProto(status);
  EXPECT_LE(proto.message().size(), kMaxStatusMessageBytes + 32);
  EXPECT_EQ(proto.message().find('\n'), std::string::npos);
  EXPECT_EQ(proto.code(), v1::Status::NOT_FOUND);
}

}  // namespace
}  // namespace computenet
