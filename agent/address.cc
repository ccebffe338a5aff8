#include "agent/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace sockeye {
namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr int kV4MappedPrefixLen = 96;

// Strict decimal: digits only, so "+1", " 1", "1x" and "" are rejected
// instead of being half-parsed. Huge values saturate so that callers report
// them as out of range rather than as not a number.
std::optional<uint32_t> ParseDigits(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = std::min<uint64_t>(value * 10 + static_cast<uint64_t>(c - '0'), UINT32_MAX);
  }
  return static_cast<uint32_t>(value);
}

bool ParseV4(std::string_view text, std::array<uint8_t, 16>* addr) {
  // inet_pton needs a NUL-terminated string.
  const std::string copy(text);
  in_addr v4{};
  if (inet_pton(AF_INET, copy.c_str(), &v4) != 1) return false;
  addr->fill(0);
  std::memcpy(addr->data(), kV4MappedPrefix, sizeof(kV4MappedPrefix));
  std::memcpy(addr->data() + 12, &v4, 4);
  return true;
}

bool ParseV6(std::string_view text, std::array<uint8_t, 16>* addr) {
  const std::string copy(text);
  in6_addr v6{};
  if (inet_pton(AF_INET6, copy.c_str(), &v6) != 1) return false;
  std::memcpy(addr->data(), &v6, 16);
  return true;
}

bool IsV4Mapped(const std::array<uint8_t, 16>& addr) {
  return std::memcmp(addr.data(), kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0;
}

std::string FormatAddress(const std::array<uint8_t, 16>& addr, bool as_v4) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (as_v4) {
    inet_ntop(AF_INET, addr.data() + 12, buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
  }
  return buf;
}

// True when the first `bits` bits of a and b are equal.
bool PrefixEqual(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                 unsigned bits) {
  const unsigned full = bits / 8;
  if (std::memcmp(a.data(), b.data(), full) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

void ClearHostBits(std::array<uint8_t, 16>* addr, unsigned bits) {
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned start = i * 8;
    if (start >= bits) {
      (*addr)[i] = 0;
    } else if (bits - start < 8) {
      (*addr)[i] &= static_cast<uint8_t>(0xff << (8 - (bits - start)));
    }
  }
}

std::string Quote(std::string_view text) { return "\"" + std::string(text) + "\""; }

}  // namespace

bool Endpoint::IsV4() const { return IsV4Mapped(addr); }

size_t EndpointHash::operator()(const Endpoint& e) const noexcept {
  uint64_t hi = 0;
  uint64_t lo = 0;
  std::memcpy(&hi, e.addr.data(), 8);
  std::memcpy(&lo, e.addr.data() + 8, 8);
  // splitmix64 finaliser: backends in one subnet differ only in a few low
  // bits, which a plain XOR would leave clustered in the table.
  auto mix = [](uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  };
  uint64_t h = mix(hi);
  h = mix(h ^ lo);
  h = mix(h ^ e.port);
  return static_cast<size_t>(h);
}

std::string FormatEndpoint(const Endpoint& endpoint) {
  const std::string port = std::to_string(endpoint.port);
  if (endpoint.IsV4()) return FormatAddress(endpoint.addr, true) + ":" + port;
  return "[" + FormatAddress(endpoint.addr, false) + "]:" + port;
}

std::optional<Endpoint> ParseEndpoint(std::string_view text) {
  Endpoint endpoint;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!ParseV6(host, &endpoint.addr)) return std::nullopt;
  } else {
    const size_t colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (!ParseV4(host, &endpoint.addr)) return std::nullopt;
  }
  const auto port_value = ParseDigits(port);
  if (!port_value || *port_value > 65535) return std::nullopt;
  endpoint.port = static_cast<uint16_t>(*port_value);
  return endpoint;
}

bool CidrMatch::Contains(const Endpoint& endpoint) const {
  if (port != 0 && endpoint.port != port) return false;
  return PrefixEqual(addr, endpoint.addr, prefix_len);
}

std::string CidrMatch::ToString() const {
  // A v4-mapped network of /96 or longer is exactly an IPv4 network, so it is
  // shown the way it was most likely written.
  if (prefix_len >= kV4MappedPrefixLen && IsV4Mapped(addr)) {
    std::string out =
        FormatAddress(addr, true) + "/" + std::to_string(prefix_len - kV4MappedPrefixLen);
    if (port != 0) out += ":" + std::to_string(port);
    return out;
  }
  std::string net = FormatAddress(addr, false) + "/" + std::to_string(prefix_len);
  if (port == 0) return net;
  return "[" + net + "]:" + std::to_string(port);
}

std::optional<CidrMatch> ParseCidrMatch(std::string_view text, std::string* error) {
  auto fail = [&](const std::string& what) -> std::optional<CidrMatch> {
    if (error != nullptr) *error = "invalid CIDR " + Quote(text) + ": " + what;
    return std::nullopt;
  };
  if (text.empty()) return fail("empty");

  std::string_view network;  // ADDR[/N]
  std::string_view port_text;
  bool has_port = false;
  bool v6 = false;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    network = text.substr(1, close - 1);
    const std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("expected \":PORT\" after ']'");
      has_port = true;
      port_text = after.substr(1);
    }
    // Brackets are for IPv6, but an IPv4 address inside them is unambiguous.
    v6 = network.find(':') != std::string_view::npos;
  } else if (std::count(text.begin(), text.end(), ':') >= 2) {
    // Bare IPv6 cannot carry a port: "::1:80" is itself an address.
    network = text;
    v6 = true;
  } else {
    const size_t colon = text.find(':');
    network = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = text.substr(colon + 1);
    }
  }

  std::string_view address = network;
  std::optional<std::string_view> prefix_text;
  if (const size_t slash = network.find('/'); slash != std::string_view::npos) {
    address = network.substr(0, slash);
    prefix_text = network.substr(slash + 1);
  }

  CidrMatch match;
  if (address.empty()) return fail("missing address");
  if (v6) {
    if (!ParseV6(address, &match.addr)) {
      return fail(Quote(address) + " is not a valid IPv6 address");
    }
  } else if (!ParseV4(address, &match.addr)) {
    return fail(Quote(address) + " is not a valid IPv4 address");
  }

  const unsigned max_prefix = v6 ? 128 : 32;
  unsigned prefix = max_prefix;
  if (prefix_text) {
    if (prefix_text->empty()) return fail("missing prefix length after '/'");
    const auto parsed = ParseDigits(*prefix_text);
    if (!parsed) return fail("prefix length " + Quote(*prefix_text) + " is not a number");
    if (*parsed > max_prefix) {
      return fail(v6 ? "prefix length must be 0-128 for IPv6"
                     : "prefix length must be 0-32 for IPv4");
    }
    prefix = *parsed;
  }
  if (!v6) prefix += kV4MappedPrefixLen;
  match.prefix_len = static_cast<uint8_t>(prefix);
  ClearHostBits(&match.addr, prefix);

  if (has_port) {
    if (port_text.empty()) return fail("missing port after ':'");
    const auto parsed = ParseDigits(port_text);
    if (!parsed) return fail("port " + Quote(port_text) + " is not a number");
    // Port 0 is how "any port" is stored, so it cannot also be a real port.
    if (*parsed == 0 || *parsed > 65535) return fail("port must be 1-65535");
    match.port = static_cast<uint16_t>(*parsed);
  }
  return match;
}

}  // namespace sockeye
