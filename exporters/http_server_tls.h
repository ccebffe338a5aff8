// TLS on the metrics server's connections, in the ConnectionDispatcher's
// terms: a handshake and reads that never block (the header reader drives
// many connections from one thread), and an answer written before closing.
// The same limits apply as on plain HTTP: the handshake counts against the
// header deadline, and its bytes against nothing but the socket buffers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "exporters/tls_context.h"

typedef struct ssl_st SSL;

namespace sockeye::metrics {

struct SslDeleter {
  void operator()(SSL* ssl) const;  // sends close_notify if it can, then frees
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// A server-side TLS session on `fd`, which it makes non-blocking. Null when
// OpenSSL cannot allocate one.
SslPtr NewTlsSession(SSL_CTX* ctx, int fd);

enum class TlsStep {
  kProgress,   // the handshake is done, or bytes were read
  kWantRead,   // wait for the socket to be readable, then call again
  kWantWrite,  // wait for it to be writable, then call again
  kClosed,     // the peer closed the session
  kFailed,     // a protocol error (a failed handshake: wrong certificate, not TLS, ...)
};

// One non-blocking step of the handshake.
TlsStep TlsHandshake(SSL* ssl);
bool TlsHandshakeDone(SSL* ssl);

// Appends what can be read without blocking to *out, up to `limit` bytes in
// all. kProgress when anything was appended; the other steps as above.
TlsStep TlsReadAvailable(SSL* ssl, std::string* out, size_t limit);

// Whether OpenSSL holds received data the socket no longer signals.
bool TlsHasPending(SSL* ssl);

// One read or write into/from the caller's buffer: >0 bytes, or 0 with
// *step saying what to wait for (or that the session is over).
size_t TlsRead(SSL* ssl, char* buffer, size_t size, TlsStep* step);
size_t TlsWrite(SSL* ssl, const char* buffer, size_t size, TlsStep* step);

}  // namespace sockeye::metrics
