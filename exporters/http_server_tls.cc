#include "exporters/http_server_tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>

#include <algorithm>
#include <array>

namespace sockeye::metrics {
namespace {

TlsStep StepOf(SSL* ssl, int result) {
  const int error = SSL_get_error(ssl, result);
  // The error queue is per thread and would otherwise carry this
  // connection's failure into the next one's.
  ERR_clear_error();
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return TlsStep::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return TlsStep::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return TlsStep::kClosed;
    default:
      return TlsStep::kFailed;
  }
}

}  // namespace

void SslDeleter::operator()(SSL* ssl) const {
  // Best effort and non-blocking: a client that stopped reading gets no
  // close_notify, and only its own connection is affected. Sessions are
  // also freed on threads other than the server's (Stop), where SIGPIPE is
  // not blocked: block it around the write, and take back the one that
  // write may have raised before unblocking.
  if (SSL_is_init_finished(ssl)) {
    sigset_t pipe;
    sigset_t previous;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &previous);
    SSL_shutdown(ssl);
    if (!sigismember(&previous, SIGPIPE)) {
      sigset_t pending;
      const timespec no_wait{0, 0};
      if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        sigtimedwait(&pipe, nullptr, &no_wait);
      }
      pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
}

SslPtr NewTlsSession(SSL_CTX* ctx, int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return nullptr;
  SslPtr ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) return nullptr;
  SSL_set_accept_state(ssl.get());
  return ssl;
}

TlsStep TlsHandshake(SSL* ssl) {
  const int result = SSL_do_handshake(ssl);
  return result == 1 ? TlsStep::kProgress : StepOf(ssl, result);
}

bool TlsHandshakeDone(SSL* ssl) { return SSL_is_init_finished(ssl) != 0; }

TlsStep TlsReadAvailable(SSL* ssl, std::string* out, size_t limit) {
  std::array<char, 4096> chunk;
  bool appended = false;
  while (out->size() < limit) {
    TlsStep step = TlsStep::kProgress;
    const size_t n = TlsRead(ssl, chunk.data(), std::min(chunk.size(), limit - out->size()), &step);
    if (n == 0) return appended && step == TlsStep::kWantRead ? TlsStep::kProgress : step;
    out->append(chunk.data(), n);
    appended = true;
  }
  return TlsStep::kProgress;
}

bool TlsHasPending(SSL* ssl) { return SSL_has_pending(ssl) != 0; }

size_t TlsRead(SSL* ssl, char* buffer, size_t size, TlsStep* step) {
  size_t n = 0;
  const int result = SSL_read_ex(ssl, buffer, size, &n);
  if (result == 1) return n;
  *step = StepOf(ssl, result);
  return 0;
}

size_t TlsWrite(SSL* ssl, const char* buffer, size_t size, TlsStep* step) {
  size_t n = 0;
  const int result = SSL_write_ex(ssl, buffer, size, &n);
  if (result == 1) return n;
  *step = StepOf(ssl, result);
  return 0;
}

}  // namespace sockeye::metrics
