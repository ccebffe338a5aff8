#include "agent/listeners.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/errno_text.h"
#include "agent/unique_fd.h"

namespace sockeye {
namespace {

// Dumps the listening sockets of one family into *out.
bool DumpFamily(int fd, uint8_t family, std::vector<Listener>* out, std::string* error) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof(message);
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.request.sdiag_family = family;
  message.request.sdiag_protocol = IPPROTO_TCP;
  message.request.idiag_states = 1u << TCP_LISTEN;
  // SK_MEMINFO_DROPS: for a listener, tcp_listendrop() counts each SYN or
  // completed handshake dropped because a queue was full in sk_drops.
  message.request.idiag_ext = 1u << (INET_DIAG_SKMEMINFO - 1);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof(kernel)) < 0) {
    *error = "sock_diag request: " + ErrnoText(errno);
    return false;
  }
  alignas(nlmsghdr) char buffer[32768];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = "sock_diag reply: " + ErrnoText(errno);
      return false;
    }
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        *error = "sock_diag: " + ErrnoText(-e->error);
        return false;
      }
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      Listener l;
      if (msg->idiag_family == AF_INET) {
        l.local.addr[10] = 0xff;
        l.local.addr[11] = 0xff;
        std::memcpy(&l.local.addr[12], msg->id.idiag_src, 4);
      } else {
        std::memcpy(l.local.addr.data(), msg->id.idiag_src, 16);
      }
      l.local.port = ntohs(msg->id.idiag_sport);
      // For listeners, inet_diag reports the accept queue as rqueue and
      // its limit as wqueue (inet_diag_msg_common_fill() via tcp_diag_get_info()).
      l.accept_queue = msg->idiag_rqueue;
      l.accept_limit = msg->idiag_wqueue;
      l.inode = msg->idiag_inode;
      int attr_len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));
      for (auto* a = reinterpret_cast<rtattr*>(const_cast<inet_diag_msg*>(msg) + 1);
           RTA_OK(a, attr_len); a = RTA_NEXT(a, attr_len)) {
        if (a->rta_type == INET_DIAG_SKMEMINFO &&
            RTA_PAYLOAD(a) >= (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) {
          const auto* meminfo = static_cast<const uint32_t*>(RTA_DATA(a));
          l.drops = meminfo[SK_MEMINFO_DROPS];
        }
      }
      out->push_back(l);
    }
  }
}

}  // namespace

bool ReadListeners(std::vector<Listener>* out, std::string* error) {
  out->clear();
  UniqueFd fd(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd.valid()) {
    *error = "opening a sock_diag socket: " + ErrnoText(errno);
    return false;
  }
  timeval timeout{.tv_sec = 1, .tv_usec = 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return DumpFamily(fd.get(), AF_INET, out, error) && DumpFamily(fd.get(), AF_INET6, out, error);
}

std::string ListenerLabel(const Endpoint& local) { return FormatEndpoint(local); }

}  // namespace sockeye
