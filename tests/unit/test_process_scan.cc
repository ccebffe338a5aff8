// ScanProcesses() over a made-up /proc: regular files stand in for the
// ns/net links (their inode is the namespace's identity, hard links share
// one) and dangling symlinks for the fd links.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "agent/process_scan.h"

namespace sockeye {
namespace {

namespace fs = std::filesystem;

class FakeProc {
 public:
  FakeProc() {
    char name[] = "/tmp/sockeye-fake-proc-XXXXXX";
    root_ = mkdtemp(name);
    fs::create_directories(root_ / "namespaces");
  }
  ~FakeProc() { fs::remove_all(root_); }

  // A process with `comm`, fds pointing at `targets`, living in the
  // namespace called `netns` (empty: no ns/net, as for an exited process).
  void Add(int pid, const std::string& comm, const std::vector<std::string>& targets,
           const std::string& netns) {
    const fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir / "fd");
    fs::create_directories(dir / "ns");
    std::ofstream(dir / "comm") << comm << "\n";
    int fd = 3;
    for (const auto& target : targets)
      fs::create_symlink(target, dir / "fd" / std::to_string(fd++));
    if (netns.empty()) return;
    const fs::path ns_file = root_ / "namespaces" / netns;
    if (!fs::exists(ns_file)) std::ofstream(ns_file) << netns;
    fs::create_hard_link(ns_file, dir / "ns" / "net");
  }

  struct stat Namespace(const std::string& netns) const {
    struct stat st {};
    stat((root_ / "namespaces" / netns).c_str(), &st);
    return st;
  }

  std::string root() const { return root_.string(); }

 private:
  fs::path root_;
};

std::vector<uint64_t> Inodes(const ProcessScan& scan) {
  std::vector<uint64_t> inodes;
  for (const auto& ns : scan.other_namespaces) inodes.push_back(ns.inode);
  std::sort(inodes.begin(), inodes.end());
  return inodes;
}

std::vector<uint64_t> Sorted(std::vector<uint64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class ProcessScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proc_.Add(100, "nginx", {"socket:[111]", "/dev/null", "pipe:[9]"}, "container-a");
    proc_.Add(200, "nginx", {"socket:[222]"}, "container-a");
    proc_.Add(300, "haproxy", {"socket:[333]"}, "container-b");
    proc_.Add(400, "sshd", {"socket:[444]"}, "container-c");
    proc_.Add(500, "nginx", {"socket:[555]"}, "host");
    proc_.Add(600, "nginx", {"socket:[666]"}, "");
    fs::create_directories(fs::path(proc_.root()) / "self" / "ns");
    host_ = proc_.Namespace("host");
  }

  uint64_t InodeOf(const std::string& netns) const {
    return static_cast<uint64_t>(proc_.Namespace(netns).st_ino);
  }

  FakeProc proc_;
  struct stat host_ {};
};

TEST_F(ProcessScanTest, WantedProcessesGiveTheirSocketsAndDistinctOtherNamespaces) {
  const ProcessScan scan =
      ScanProcesses({"nginx", "haproxy"}, proc_.root(), static_cast<uint64_t>(host_.st_dev),
                    static_cast<uint64_t>(host_.st_ino));
  EXPECT_EQ(Sorted(scan.socket_inodes), (std::vector<uint64_t>{111, 222, 333, 555, 666}));
  EXPECT_EQ(Inodes(scan), Sorted({InodeOf("container-a"), InodeOf("container-b")}));
  for (const auto& ns : scan.other_namespaces) {
    EXPECT_TRUE(ns.fd.valid());
    EXPECT_EQ(ns.device, static_cast<uint64_t>(host_.st_dev));
  }
  EXPECT_EQ(scan.namespaces_unreadable, 0u);  // pid 600's is missing, as if it had exited
}

TEST_F(ProcessScanTest, WithoutProcessNamesEveryProcessNamespaceCountsAndNoSocketIsListed) {
  const ProcessScan scan = ScanProcesses({}, proc_.root(), static_cast<uint64_t>(host_.st_dev),
                                         static_cast<uint64_t>(host_.st_ino));
  EXPECT_TRUE(scan.socket_inodes.empty());
  EXPECT_EQ(Inodes(scan),
            Sorted({InodeOf("container-a"), InodeOf("container-b"), InodeOf("container-c")}));
}

TEST_F(ProcessScanTest, OwnNamespaceIsRecognisedByDeviceAndInode) {
  // Same inode on another device is another namespace.
  const ProcessScan scan =
      ScanProcesses({"nginx"}, proc_.root(), static_cast<uint64_t>(host_.st_dev) + 1,
                    static_cast<uint64_t>(host_.st_ino));
  EXPECT_EQ(Inodes(scan), Sorted({InodeOf("container-a"), InodeOf("host")}));
}

// As root only a loop fails to open here (root passes permission checks);
// /proc/1/ns/net of a sandbox's init answers EACCES even to root.
TEST_F(ProcessScanTest, NamespacesThatCannotBeOpenedAreCountedWithTheFirstReason) {
  const fs::path ns_dir = fs::path(proc_.root()) / "700" / "ns";
  fs::create_directories(ns_dir);
  std::ofstream(fs::path(proc_.root()) / "700" / "comm") << "nginx\n";
  fs::create_symlink("net", ns_dir / "net");
  const ProcessScan scan =
      ScanProcesses({"nginx"}, proc_.root(), static_cast<uint64_t>(host_.st_dev),
                    static_cast<uint64_t>(host_.st_ino));
  EXPECT_EQ(scan.namespaces_unreadable, 1u);
  EXPECT_EQ(scan.first_unreadable, proc_.root() + "/700/ns/net: Too many levels of symbolic links");
}

TEST_F(ProcessScanTest, MissingProcDirectoryGivesNothing) {
  const ProcessScan scan = ScanProcesses({}, proc_.root() + "/absent", 0, 0);
  EXPECT_TRUE(scan.socket_inodes.empty());
  EXPECT_TRUE(scan.other_namespaces.empty());
}

TEST(OwnNetworkNamespace, IsTheOneProcSelfShows) {
  NetworkNamespace own;
  ASSERT_TRUE(OpenOwnNetworkNamespace(&own));
  struct stat st {};
  ASSERT_EQ(stat("/proc/self/ns/net", &st), 0);
  EXPECT_EQ(own.inode, static_cast<uint64_t>(st.st_ino));
  EXPECT_EQ(own.device, static_cast<uint64_t>(st.st_dev));
}

}  // namespace
}  // namespace sockeye
