// Backend addresses as the kernel reports them (IPv6 or v4-mapped IPv6),
// their display form, and the CIDR[:PORT] matchers used by filters and pools.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sockeye {

struct Endpoint {
  std::array<uint8_t, 16> addr{};  // IPv6, or ::ffff:a.b.c.d for IPv4
  uint16_t port = 0;               // host byte order

  bool IsV4() const;  // v4-mapped
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct EndpointHash {
  size_t operator()(const Endpoint& e) const noexcept;
};

// "10.0.0.1:8080" for v4-mapped addresses, "[2001:db8::1]:443" otherwise.
std::string FormatEndpoint(const Endpoint& endpoint);

// Parses "10.0.0.1:8080" / "[::1]:80" (used by tests and tools).
std::optional<Endpoint> ParseEndpoint(std::string_view text);

// A network (IPv4 prefixes are stored as v4-mapped /96+N) and an optional port.
struct CidrMatch {
  std::array<uint8_t, 16> addr{};  // network address, host bits zeroed
  uint8_t prefix_len = 0;          // 0..128 over the 16-byte form
  uint16_t port = 0;               // 0 = any port

  bool Contains(const Endpoint& endpoint) const;
  std::string ToString() const;  // canonical form, e.g. "10.1.0.0/24:8080"
};

// Accepted syntax:
//   IPv4: A.B.C.D[/N][:PORT]          e.g. 10.1.0.0/24:8080, 10.1.0.5
//   IPv6: ADDR[/N]  or  [ADDR[/N]]:PORT   e.g. 2001:db8::/32, [::1]:8080
// A missing /N means a single host. Returns nullopt and sets *error to a
// message naming what is wrong (bad address, prefix > 32/128, port 0 or
// > 65535, host bits set is allowed and they are cleared).
std::optional<CidrMatch> ParseCidrMatch(std::string_view text, std::string* error);

}  // namespace sockeye
