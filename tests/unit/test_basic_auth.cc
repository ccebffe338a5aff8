// Basic authentication against bcrypt hashes: what is accepted, what is
// not, and that a refusal costs as much time as an acceptance.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "exporters/basic_auth.h"
#include "tests/unit/web_config_test_util.h"

namespace sockeye::metrics {
namespace {

using test_util::Bcrypt;

std::string Header(const std::string& credentials) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < credentials.size(); i += 3) {
    const uint32_t n = (uint8_t(credentials[i]) << 16) | (uint8_t(credentials[i + 1]) << 8) |
                       uint8_t(credentials[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (credentials.size() - i == 1) {
    const uint32_t n = uint8_t(credentials[i]) << 16;
    out += std::string{kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (credentials.size() - i == 2) {
    const uint32_t n = (uint8_t(credentials[i]) << 16) | (uint8_t(credentials[i + 1]) << 8);
    out += std::string{kAlphabet[(n >> 18) & 63], kAlphabet[(n >> 12) & 63],
                       kAlphabet[(n >> 6) & 63], '='};
  }
  return "Basic " + out;
}

TEST(BasicAuthTest, AcceptsOnlyTheRightPassword) {
  BasicAuth auth({{"alice", Bcrypt("wonderland")}, {"bob", Bcrypt("pa:ss")}});
  EXPECT_TRUE(auth.Check(Header("alice:wonderland")));
  EXPECT_TRUE(auth.Check(Header("bob:pa:ss")));                              // the first ':' splits
  EXPECT_TRUE(auth.Check("basic " + Header("alice:wonderland").substr(6)));  // scheme case
  EXPECT_FALSE(auth.Check(Header("alice:Wonderland")));
  EXPECT_FALSE(auth.Check(Header("alice:")));
  EXPECT_FALSE(auth.Check(Header("alice:wonderland ")));
  EXPECT_FALSE(auth.Check(Header("bob:wonderland")));
  EXPECT_FALSE(auth.Check(Header("carol:wonderland")));
  EXPECT_FALSE(auth.Check(Header(":wonderland")));
  EXPECT_FALSE(auth.Check(Header("alicewonderland")));
  EXPECT_FALSE(auth.Check(""));
  EXPECT_FALSE(auth.Check("Basic"));
  EXPECT_FALSE(auth.Check("Basic !!!!"));
  EXPECT_FALSE(auth.Check("Bearer " + Header("alice:wonderland").substr(6)));
  EXPECT_FALSE(auth.Check(Header(std::string("alice:wonderland\0x", 18))));
}

TEST(BasicAuthTest, NoUsersMeansNoAuthentication) {
  BasicAuth auth({});
  EXPECT_TRUE(auth.empty());
  EXPECT_TRUE(auth.Check(""));
}

TEST(BasicAuthTest, ARefusalTakesAsLongAsAnAcceptance) {
  // Cost 8: ~10-20 ms a check, far above the scheduling noise.
  // Each kind is timed 9 times, interleaved, and its fastest run kept: a
  // busy machine only ever adds time (a median failed once by 2 % beside a
  // kernel-matrix run).
  BasicAuth auth({{"alice", Bcrypt("right", 8)}, {"bob", Bcrypt("other", 5)}});
  const std::vector<std::string> headers = {Header("alice:right"), Header("alice:wrong"),
                                            Header("mallory:right"), "Basic %%%", ""};
  std::vector<double> fastest(headers.size(), 1e9);
  for (int round = 0; round < 9; ++round) {
    for (size_t k = 0; k < headers.size(); ++k) {
      const auto start = std::chrono::steady_clock::now();
      auth.Check(headers[k]);
      fastest[k] = std::min(fastest[k], std::chrono::duration<double, std::milli>(
                                            std::chrono::steady_clock::now() - start)
                                            .count());
    }
  }
  const double right = fastest[0];
  for (double t : {fastest[1], fastest[2], fastest[3], fastest[4]}) {
    EXPECT_GT(t, right * 0.5) << "right " << right << " ms";
    EXPECT_LT(t, right * 2) << "right " << right << " ms";
  }
}

TEST(BasicAuthTest, BcryptHashFormat) {
  std::string problem;
  EXPECT_TRUE(IsBcryptHash(Bcrypt("x"), &problem)) << problem;
  EXPECT_TRUE(
      IsBcryptHash("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG", &problem));
  EXPECT_TRUE(
      IsBcryptHash("$2a$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG", &problem));
  EXPECT_FALSE(
      IsBcryptHash("$2x$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG", &problem));
  EXPECT_FALSE(
      IsBcryptHash("$2y$1x$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG", &problem));
  EXPECT_FALSE(
      IsBcryptHash("$2y$32$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG", &problem));
  EXPECT_FALSE(
      IsBcryptHash("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7z", &problem));
  EXPECT_FALSE(
      IsBcryptHash("$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7Esim:C7zG", &problem));
  EXPECT_FALSE(IsBcryptHash("", &problem));
}

TEST(BasicAuthTest, Base64) {
  std::string out;
  EXPECT_TRUE(DecodeBase64("", &out));
  EXPECT_EQ(out, "");
  EXPECT_TRUE(DecodeBase64("YQ==", &out));
  EXPECT_EQ(out, "a");
  EXPECT_TRUE(DecodeBase64("YWI=", &out));
  EXPECT_EQ(out, "ab");
  EXPECT_TRUE(DecodeBase64("YWJj", &out));
  EXPECT_EQ(out, "abc");
  EXPECT_TRUE(DecodeBase64("+/+/", &out));
  EXPECT_EQ(out, "\xfb\xff\xbf");
  EXPECT_FALSE(DecodeBase64("YWJ", &out));
  EXPECT_FALSE(DecodeBase64("Y===", &out));
  EXPECT_FALSE(DecodeBase64("YQ==YWJj", &out));
  EXPECT_FALSE(DecodeBase64("YW=j", &out));
  EXPECT_FALSE(DecodeBase64("YW-j", &out));
}

}  // namespace
}  // namespace sockeye::metrics
