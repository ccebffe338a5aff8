#include "exporters/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <utility>

namespace sockeye::metrics {
namespace {

constexpr std::string_view kBcryptAlphabet =
    "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
// "$2b$10$" then 22 characters of salt and 31 of digest.
constexpr size_t kBcryptLength = 60;

int CostOf(std::string_view hash) { return (hash[4] - '0') * 10 + (hash[5] - '0'); }

// One bcrypt of `password` with `hash`'s salt and cost, compared with
// `hash` in constant time.
bool Matches(const std::string& password, const std::string& hash) {
  // crypt_data is ~32 KiB in libxcrypt: too large for a worker's stack to
  // take lightly, and crypt_r needs it zeroed before first use.
  auto data = std::make_unique<crypt_data>();
  const char* result = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (result == nullptr || std::strlen(result) != hash.size()) return false;
  return CRYPTO_memcmp(result, hash.data(), hash.size()) == 0;
}

bool StartsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

}  // namespace

BasicAuth::BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {
  for (const auto& [user, hash] : users_) {
    if (decoy_hash_.empty() || CostOf(hash) > CostOf(decoy_hash_)) decoy_hash_ = hash;
  }
}

bool BasicAuth::Check(std::string_view authorization) const {
  if (users_.empty()) return true;
  std::string user;
  std::string password;
  bool well_formed = false;
  constexpr std::string_view kScheme = "Basic ";
  std::string credentials;
  if (StartsWithIgnoringCase(authorization, kScheme)) {
    std::string_view encoded = authorization.substr(kScheme.size());
    while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
    while (!encoded.empty() && encoded.back() == ' ') encoded.remove_suffix(1);
    if (DecodeBase64(encoded, &credentials)) {
      const size_t colon = credentials.find(':');
      if (colon != std::string::npos) {
        user = credentials.substr(0, colon);
        password = credentials.substr(colon + 1);
        well_formed = password.find('\0') == std::string::npos;
      }
    }
  }
  auto it = well_formed ? users_.find(user) : users_.end();
  const bool known = it != users_.end();
  const bool matched = Matches(password, known ? it->second : decoy_hash_);
  return known && matched;
}

bool IsBcryptHash(std::string_view hash, std::string* problem) {
  auto fail = [problem](std::string why) {
    if (problem != nullptr) *problem = std::move(why);
    return false;
  };
  if (hash.empty()) return fail("the password hash is empty");
  if (hash.size() < 7 || hash[0] != '$' || hash[1] != '2' ||
      (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') || hash[3] != '$' || hash[6] != '$') {
    return fail("not a bcrypt hash (expected $2a$, $2b$ or $2y$, e.g. from htpasswd -nBC 10)");
  }
  if (!std::isdigit(static_cast<unsigned char>(hash[4])) ||
      !std::isdigit(static_cast<unsigned char>(hash[5])) || CostOf(hash) < 4 || CostOf(hash) > 31) {
    return fail("bcrypt cost must be 04-31");
  }
  if (hash.size() != kBcryptLength ||
      hash.find_first_not_of(kBcryptAlphabet, 7) != std::string_view::npos) {
    return fail("malformed bcrypt hash (expected 60 characters)");
  }
  return true;
}

bool DecodeBase64(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0) return false;
  std::string decoded;
  decoded.reserve(text.size() / 4 * 3);
  uint32_t bits = 0;
  int count = 0;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    int value = -1;
    if (c >= 'A' && c <= 'Z') value = c - 'A';
    if (c >= 'a' && c <= 'z') value = c - 'a' + 26;
    if (c >= '0' && c <= '9') value = c - '0' + 52;
    if (c == '+') value = 62;
    if (c == '/') value = 63;
    if (c == '=') {
      // Only at the end, at most two.
      if (i + 2 < text.size() || ++padding > 2) return false;
      value = 0;
    } else if (padding > 0 || value < 0) {
      return false;
    }
    bits = (bits << 6) | static_cast<uint32_t>(value);
    if (++count == 4) {
      decoded += static_cast<char>((bits >> 16) & 0xff);
      decoded += static_cast<char>((bits >> 8) & 0xff);
      decoded += static_cast<char>(bits & 0xff);
      bits = 0;
      count = 0;
    }
  }
  decoded.resize(decoded.size() - padding);
  *out = std::move(decoded);
  return true;
}

}  // namespace sockeye::metrics
