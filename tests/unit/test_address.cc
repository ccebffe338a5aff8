#include <gtest/gtest.h>

#include <string>
#include <unordered_set>

#include "agent/address.h"

namespace sockeye {
namespace {

Endpoint MustParseEndpoint(std::string_view text) {
  const auto endpoint = ParseEndpoint(text);
  EXPECT_TRUE(endpoint.has_value()) << text;
  return endpoint.value_or(Endpoint{});
}

CidrMatch MustParseCidr(std::string_view text) {
  std::string error;
  const auto match = ParseCidrMatch(text, &error);
  EXPECT_TRUE(match.has_value()) << text << ": " << error;
  return match.value_or(CidrMatch{});
}

std::string CidrError(std::string_view text) {
  std::string error;
  EXPECT_FALSE(ParseCidrMatch(text, &error).has_value()) << text;
  return error;
}

TEST(EndpointTest, ParsesIpv4AsV4Mapped) {
  const Endpoint e = MustParseEndpoint("10.0.0.1:8080");
  const std::array<uint8_t, 16> expected = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  EXPECT_EQ(e.addr, expected);
  EXPECT_EQ(e.port, 8080);
  EXPECT_TRUE(e.IsV4());
}

TEST(EndpointTest, ParsesIpv6) {
  const Endpoint e = MustParseEndpoint("[::1]:80");
  std::array<uint8_t, 16> expected{};
  expected[15] = 1;
  EXPECT_EQ(e.addr, expected);
  EXPECT_EQ(e.port, 80);
  EXPECT_FALSE(e.IsV4());
}

TEST(EndpointTest, V4MappedInBracketsIsV4) {
  const Endpoint e = MustParseEndpoint("[::ffff:192.0.2.7]:443");
  EXPECT_TRUE(e.IsV4());
  EXPECT_EQ(e, MustParseEndpoint("192.0.2.7:443"));
}

TEST(EndpointTest, IsV4RequiresTheWholeMappedPrefix) {
  // ::192.0.2.7 (deprecated v4-compatible) and ::fffe:... are IPv6.
  EXPECT_FALSE(MustParseEndpoint("[::192.0.2.7]:1").IsV4());
  EXPECT_FALSE(MustParseEndpoint("[::fffe:c000:207]:1").IsV4());
  EXPECT_FALSE(MustParseEndpoint("[1::ffff:c000:207]:1").IsV4());
}

TEST(EndpointTest, FormatsV4AndCanonicalV6) {
  EXPECT_EQ(FormatEndpoint(MustParseEndpoint("10.0.0.1:8080")), "10.0.0.1:8080");
  EXPECT_EQ(FormatEndpoint(MustParseEndpoint("[0:0:0:0:0:0:0:1]:80")), "[::1]:80");
  EXPECT_EQ(FormatEndpoint(MustParseEndpoint("[2001:DB8:0:0:1::1]:443")),
            "[2001:db8::1:0:0:1]:443");
  EXPECT_EQ(FormatEndpoint(MustParseEndpoint("[::ffff:10.1.2.3]:9")), "10.1.2.3:9");
  EXPECT_EQ(FormatEndpoint(Endpoint{}), "[::]:0");
}

TEST(EndpointTest, PortBounds) {
  EXPECT_EQ(MustParseEndpoint("1.2.3.4:65535").port, 65535);
  EXPECT_EQ(MustParseEndpoint("1.2.3.4:0").port, 0);
  EXPECT_FALSE(ParseEndpoint("1.2.3.4:65536"));
}

TEST(EndpointTest, RejectsMalformedText) {
  for (const char* bad : {"", "10.0.0.1", "10.0.0.1:", "10.0.0.1:x", "10.0.0.1:+80", "10.0.0.256:1",
                          "::1:80", "[::1]", "[::1]80", "[::1:80", "[10.0.0.1]:80", "[::1]:-1",
                          "host:80", " 10.0.0.1:80", "10.0.0.1:80 "}) {
    EXPECT_FALSE(ParseEndpoint(bad)) << bad;
  }
}

TEST(EndpointTest, HashAgreesWithEquality) {
  EndpointHash hash;
  EXPECT_EQ(hash(MustParseEndpoint("10.0.0.1:80")),
            hash(MustParseEndpoint("[::ffff:10.0.0.1]:80")));
  std::unordered_set<Endpoint, EndpointHash> set;
  for (int host = 0; host < 256; ++host) {
    for (int port : {80, 443}) {
      set.insert(MustParseEndpoint("10.0.0." + std::to_string(host) + ":" + std::to_string(port)));
    }
  }
  EXPECT_EQ(set.size(), 512u);
  EXPECT_EQ(set.count(MustParseEndpoint("10.0.0.7:443")), 1u);
  EXPECT_EQ(set.count(MustParseEndpoint("10.0.0.7:444")), 0u);
  // Neighbouring endpoints should not collide.
  std::unordered_set<size_t> hashes;
  for (const Endpoint& e : set) hashes.insert(hash(e));
  EXPECT_EQ(hashes.size(), set.size());
}

TEST(CidrMatchTest, ParsesIpv4WithPrefixAndPort) {
  const CidrMatch m = MustParseCidr("10.1.0.0/24:8080");
  EXPECT_EQ(m.prefix_len, 96 + 24);
  EXPECT_EQ(m.port, 8080);
  EXPECT_EQ(m.ToString(), "10.1.0.0/24:8080");
}

TEST(CidrMatchTest, Ipv4HostWithoutPrefixIsSlash32) {
  const CidrMatch m = MustParseCidr("10.1.0.5");
  EXPECT_EQ(m.prefix_len, 128);
  EXPECT_EQ(m.port, 0);
  EXPECT_EQ(m.ToString(), "10.1.0.5/32");
  EXPECT_EQ(MustParseCidr("10.1.0.5:22").ToString(), "10.1.0.5/32:22");
}

TEST(CidrMatchTest, HostBitsAreCleared) {
  EXPECT_EQ(MustParseCidr("10.1.2.3/16").ToString(), "10.1.0.0/16");
  EXPECT_EQ(MustParseCidr("10.1.2.3/20").ToString(), "10.1.0.0/20");
  EXPECT_EQ(MustParseCidr("2001:db8:ffff::1/33").ToString(), "2001:db8:8000::/33");
  EXPECT_EQ(MustParseCidr("255.255.255.255/0").ToString(), "0.0.0.0/0");
}

TEST(CidrMatchTest, ParsesIpv6Forms) {
  const CidrMatch net = MustParseCidr("2001:db8::/32");
  EXPECT_EQ(net.prefix_len, 32);
  EXPECT_EQ(net.port, 0);
  EXPECT_EQ(net.ToString(), "2001:db8::/32");

  const CidrMatch host = MustParseCidr("[::1]:8080");
  EXPECT_EQ(host.prefix_len, 128);
  EXPECT_EQ(host.port, 8080);
  EXPECT_EQ(host.ToString(), "[::1/128]:8080");

  EXPECT_EQ(MustParseCidr("[2001:db8::/32]:443").ToString(), "[2001:db8::/32]:443");
  EXPECT_EQ(MustParseCidr("[2001:db8::/32]").ToString(), "2001:db8::/32");
  EXPECT_EQ(MustParseCidr("::/0").ToString(), "::/0");
  EXPECT_EQ(MustParseCidr("0:0:0:0:0:0:0:1").ToString(), "::1/128");
}

TEST(CidrMatchTest, BareIpv6NeverHasAPort) {
  // "2001:db8::1:80" is an address, not 2001:db8::1 port 80.
  const CidrMatch m = MustParseCidr("2001:db8::1:80");
  EXPECT_EQ(m.port, 0);
  EXPECT_EQ(m.prefix_len, 128);
  EXPECT_EQ(m.ToString(), "2001:db8::1:80/128");
}

TEST(CidrMatchTest, V4MappedIpv6PrefixIsShownAsIpv4) {
  EXPECT_EQ(MustParseCidr("::ffff:10.0.0.0/104").ToString(), "10.0.0.0/8");
  EXPECT_EQ(MustParseCidr("[::ffff:10.0.0.0/104]:53").ToString(), "10.0.0.0/8:53");
  // Shorter than /96 it covers more than IPv4 and stays IPv6.
  EXPECT_EQ(MustParseCidr("::ffff:0:0/95").ToString(), "::fffe:0:0/95");
}

TEST(CidrMatchTest, BracketedIpv4IsAccepted) {
  EXPECT_EQ(MustParseCidr("[10.0.0.0/8]:80").ToString(), "10.0.0.0/8:80");
}

TEST(CidrMatchTest, ContainsComparesPrefixBits) {
  const CidrMatch m = MustParseCidr("10.1.16.0/20");
  EXPECT_TRUE(m.Contains(MustParseEndpoint("10.1.16.0:1")));
  EXPECT_TRUE(m.Contains(MustParseEndpoint("10.1.31.255:1")));
  EXPECT_FALSE(m.Contains(MustParseEndpoint("10.1.32.0:1")));
  EXPECT_FALSE(m.Contains(MustParseEndpoint("10.1.15.255:1")));
  EXPECT_FALSE(m.Contains(MustParseEndpoint("[::a01:1001]:1")));  // same low bits, not mapped
}

TEST(CidrMatchTest, ContainsChecksPortUnlessAny) {
  const CidrMatch with_port = MustParseCidr("10.0.0.0/8:8080");
  EXPECT_TRUE(with_port.Contains(MustParseEndpoint("10.9.9.9:8080")));
  EXPECT_FALSE(with_port.Contains(MustParseEndpoint("10.9.9.9:8081")));
  const CidrMatch any_port = MustParseCidr("10.0.0.0/8");
  EXPECT_TRUE(any_port.Contains(MustParseEndpoint("10.9.9.9:1")));
  EXPECT_TRUE(any_port.Contains(MustParseEndpoint("10.9.9.9:65535")));
}

TEST(CidrMatchTest, ZeroLengthPrefixes) {
  const CidrMatch all_v4 = MustParseCidr("0.0.0.0/0");
  EXPECT_TRUE(all_v4.Contains(MustParseEndpoint("1.2.3.4:5")));
  EXPECT_TRUE(all_v4.Contains(MustParseEndpoint("255.255.255.255:5")));
  EXPECT_FALSE(all_v4.Contains(MustParseEndpoint("[2001:db8::1]:5")));

  const CidrMatch all = MustParseCidr("::/0");
  EXPECT_TRUE(all.Contains(MustParseEndpoint("1.2.3.4:5")));
  EXPECT_TRUE(all.Contains(MustParseEndpoint("[2001:db8::1]:5")));
}

TEST(CidrMatchTest, FullLengthPrefixes) {
  const CidrMatch v4 = MustParseCidr("192.0.2.1/32");
  EXPECT_TRUE(v4.Contains(MustParseEndpoint("192.0.2.1:80")));
  EXPECT_FALSE(v4.Contains(MustParseEndpoint("192.0.2.0:80")));
  const CidrMatch v6 = MustParseCidr("2001:db8::1/128");
  EXPECT_TRUE(v6.Contains(MustParseEndpoint("[2001:db8::1]:80")));
  EXPECT_FALSE(v6.Contains(MustParseEndpoint("[2001:db8::2]:80")));
  EXPECT_FALSE(v6.Contains(MustParseEndpoint("[2001:db8::1:1]:80")));
}

TEST(CidrMatchTest, Ipv6PrefixDoesNotMatchIpv4) {
  const CidrMatch m = MustParseCidr("2001:db8::/32");
  EXPECT_TRUE(m.Contains(MustParseEndpoint("[2001:db8:1::5]:443")));
  EXPECT_FALSE(m.Contains(MustParseEndpoint("[2001:db9::5]:443")));
  EXPECT_FALSE(m.Contains(MustParseEndpoint("32.1.13.184:443")));
}

TEST(CidrMatchTest, ToStringRoundTrips) {
  for (const char* text : {"10.1.0.0/24:8080", "0.0.0.0/0", "10.1.0.5/32", "2001:db8::/32",
                           "[::1/128]:8080", "::/0", "[fe80::/10]:22"}) {
    const CidrMatch m = MustParseCidr(text);
    EXPECT_EQ(m.ToString(), text);
    const CidrMatch again = MustParseCidr(m.ToString());
    EXPECT_EQ(again.addr, m.addr) << text;
    EXPECT_EQ(again.prefix_len, m.prefix_len) << text;
    EXPECT_EQ(again.port, m.port) << text;
  }
}

TEST(CidrMatchTest, ErrorsNameTheTextAndTheProblem) {
  EXPECT_EQ(CidrError("10.0.0.0/33"),
            "invalid CIDR \"10.0.0.0/33\": prefix length must be 0-32 for IPv4");
  EXPECT_EQ(CidrError("2001:db8::/129"),
            "invalid CIDR \"2001:db8::/129\": prefix length must be 0-128 for IPv6");
  EXPECT_EQ(CidrError("10.0.0.0/99999999999"),
            "invalid CIDR \"10.0.0.0/99999999999\": prefix length must be 0-32 for IPv4");
  EXPECT_EQ(CidrError(""), "invalid CIDR \"\": empty");
  EXPECT_EQ(CidrError("10.0.0.256"),
            "invalid CIDR \"10.0.0.256\": \"10.0.0.256\" is not a valid IPv4 address");
  EXPECT_EQ(CidrError("example.com:80"),
            "invalid CIDR \"example.com:80\": \"example.com\" is not a valid IPv4 address");
  EXPECT_EQ(CidrError("2001:db8::g/32"),
            "invalid CIDR \"2001:db8::g/32\": \"2001:db8::g\" is not a valid IPv6 address");
  EXPECT_EQ(CidrError("10.0.0.0/"), "invalid CIDR \"10.0.0.0/\": missing prefix length after '/'");
  EXPECT_EQ(CidrError("10.0.0.0/x"),
            "invalid CIDR \"10.0.0.0/x\": prefix length \"x\" is not a number");
  EXPECT_EQ(CidrError("10.0.0.0/-1"),
            "invalid CIDR \"10.0.0.0/-1\": prefix length \"-1\" is not a number");
  EXPECT_EQ(CidrError("/8"), "invalid CIDR \"/8\": missing address");
  EXPECT_EQ(CidrError("10.0.0.1:"), "invalid CIDR \"10.0.0.1:\": missing port after ':'");
  EXPECT_EQ(CidrError("10.0.0.1:http"),
            "invalid CIDR \"10.0.0.1:http\": port \"http\" is not a number");
  EXPECT_EQ(CidrError("10.0.0.1:0"), "invalid CIDR \"10.0.0.1:0\": port must be 1-65535");
  EXPECT_EQ(CidrError("10.0.0.1:65536"), "invalid CIDR \"10.0.0.1:65536\": port must be 1-65535");
  EXPECT_EQ(CidrError("[::1]:0"), "invalid CIDR \"[::1]:0\": port must be 1-65535");
  EXPECT_EQ(CidrError("[::1:80"), "invalid CIDR \"[::1:80\": missing ']'");
  EXPECT_EQ(CidrError("[::1]80"), "invalid CIDR \"[::1]80\": expected \":PORT\" after ']'");
}

TEST(CidrMatchTest, ErrorPointerMayBeNull) {
  EXPECT_FALSE(ParseCidrMatch("nonsense", nullptr).has_value());
  EXPECT_TRUE(ParseCidrMatch("10.0.0.0/8", nullptr).has_value());
}

TEST(CidrMatchTest, EndsOfPortRange) {
  EXPECT_EQ(MustParseCidr("10.0.0.1:1").port, 1);
  EXPECT_EQ(MustParseCidr("[::1]:65535").port, 65535);
}

}  // namespace
}  // namespace sockeye
