// StopStringFilter: stop strings spanning pieces, minimal hold-back, false starts, several
// stop strings, multi-byte text, flush.
#include <gtest/gtest.h>

#include "runtime/engine/stop_strings.h"

namespace shardlm {
namespace {

TEST(StopStrings, MatchAcrossThreePieces) {
  StopStringFilter f({"END"});
  EXPECT_EQ(f.put("abc E"), "abc ");  // "E" may start END: held back
  EXPECT_EQ(f.held(), 1u);
  EXPECT_EQ(f.put("N"), "");
  EXPECT_FALSE(f.stopped());
  EXPECT_EQ(f.put("Dxyz"), "");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.matched(), "END");
  EXPECT_EQ(f.put("more"), "");
  EXPECT_EQ(f.flush(), "");
}

TEST(StopStrings, MatchInsideOnePieceReleasesTheTextBefore) {
  StopStringFilter f({"</answer>"});
  EXPECT_EQ(f.put("yes</answer> trailing"), "yes");
  EXPECT_TRUE(f.stopped());
}

TEST(StopStrings, FalseStartIsReleased) {
  StopStringFilter f({"END"});
  EXPECT_EQ(f.put("EN"), "");
  EXPECT_EQ(f.put("X"), "ENX");
  EXPECT_FALSE(f.stopped());
  EXPECT_EQ(f.put("E"), "");
  EXPECT_EQ(f.flush(), "E");
}

TEST(StopStrings, HoldsOnlyWhatCanStillMatch) {
  StopStringFilter f({"abcd"});
  EXPECT_EQ(f.put("xxabc"), "xx");
  EXPECT_EQ(f.held(), 3u);
  EXPECT_EQ(f.put("abcd"), "abc");  // "abcabcd": the match starts at the second "abc"
  EXPECT_TRUE(f.stopped());
}

TEST(StopStrings, EarliestOfSeveralWins) {
  StopStringFilter f({"world", "lo w", "xyz"});
  EXPECT_EQ(f.put("hel"), "he");  // "l" may start "lo w"
  EXPECT_EQ(f.put("lo world"), "l");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.matched(), "lo w");
}

TEST(StopStrings, MultiByteStopStringAcrossPieces) {
  StopStringFilter f({"世界"});
  EXPECT_EQ(f.put("你好世"), "你好");
  EXPECT_EQ(f.put("界!"), "");
  EXPECT_TRUE(f.stopped());
}

TEST(StopStrings, NoStopsPassesEverythingThrough) {
  StopStringFilter f({"", ""});
  EXPECT_EQ(f.put("abc"), "abc");
  EXPECT_EQ(f.held(), 0u);
  EXPECT_FALSE(f.stopped());
}

}  // namespace
}  // namespace shardlm
