// HTTP Basic authentication against bcrypt hashes (basic_auth_users in the
// web configuration file), checked with libcrypt's crypt_r. Every check runs
// exactly one bcrypt, also for an unknown user or a malformed header, and
// compares in constant time, so the time an answer takes does not tell
// whether the user exists or how much of the password matched.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace sockeye::metrics {

class BasicAuth {
 public:
  // `users`: user name -> bcrypt hash, each accepted by IsBcryptHash.
  explicit BasicAuth(std::map<std::string, std::string> users);

  // True when `authorization` (the request's Authorization header, "" when
  // absent) names a user and that user's password. Thread-safe; takes one
  // bcrypt's time (tens of ms at cost 10) whatever the outcome.
  bool Check(std::string_view authorization) const;

  bool empty() const { return users_.empty(); }

 private:
  std::map<std::string, std::string> users_;
  // The costliest user's hash: an unknown user's password is checked
  // against it, so that such an answer takes as long as a real user's.
  std::string decoy_hash_;
};

// Whether `hash` is a bcrypt hash ($2a$, $2b$ or $2y$, cost 4-31, 53
// characters of salt and digest). If not, *problem says why.
bool IsBcryptHash(std::string_view hash, std::string* problem);

// RFC 4648 base64 with padding, as Basic credentials are sent; false on
// anything else.
bool DecodeBase64(std::string_view text, std::string* out);

}  // namespace sockeye::metrics
