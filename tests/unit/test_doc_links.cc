// Places the docs and the code point at must exist. Comments that back a
// choice with a measurement cite the benchmark reference, its history or a
// raw result file; when a heading is renamed or a result file moves, such a
// citation is left with nowhere to land, and nothing else would notice.
//   * Every relative link in a Markdown file names a file that exists, and a
//     heading of it when the link has an anchor (GitHub's anchors).
//   * Outside Markdown, every citation of bench/README.md carries an anchor
//     that exists; one of bench/HISTORY.md an anchor or the date of an entry;
//     every cited bench/results/ file and docs/ page exists.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef SOCKEYE_SOURCE_DIR
#error "SOCKEYE_SOURCE_DIR must name the source tree (tests/CMakeLists.txt)"
#endif

namespace sockeye {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// GitHub's anchor for a heading: lower case, spaces to hyphens, everything
// but letters, digits, '-' and '_' dropped (the headings are ASCII; other
// bytes are punctuation such as dashes and drop too).
std::string Slug(const std::string& heading) {
  std::string out;
  for (unsigned char c : heading) {
    if (std::isalnum(c) && c < 0x80)
      out += static_cast<char>(std::tolower(c));
    else if (c == ' ')
      out += '-';
    else if (c == '-' || c == '_')
      out += static_cast<char>(c);
  }
  return out;
}

// Outside fenced code blocks: the anchors of the headings (a repeated one
// gets -1, -2, ...), and of <a id="...">; and, for a history, its entries'
// dates ("## 2026-12-06 ...").
struct Headings {
  std::set<std::string> anchors;
  std::set<std::string> dates;
};

Headings HeadingsOf(const std::vector<std::string>& lines) {
  static const std::regex heading(R"re(^#{1,6} +(.*?) *$)re");
  static const std::regex html_anchor(R"re(<a (?:id|name)="([^"]+)")re");
  static const std::regex date(R"re(^(\d{4}-\d{2}-\d{2})\b)re");
  Headings out;
  std::map<std::string, int> seen;
  bool fenced = false;
  for (const std::string& line : lines) {
    if (line.starts_with("```")) fenced = !fenced;
    if (fenced) continue;
    std::smatch m;
    if (std::regex_match(line, m, heading)) {
      const std::string title = m[1].str();
      const std::string slug = Slug(title);
      const int n = seen[slug]++;
      out.anchors.insert(n == 0 ? slug : slug + "-" + std::to_string(n));
      std::smatch d;
      if (std::regex_search(title, d, date)) out.dates.insert(d[1].str());
    }
    for (auto it = std::sregex_iterator(line.begin(), line.end(), html_anchor);
         it != std::sregex_iterator(); ++it)
      out.anchors.insert((*it)[1].str());
  }
  return out;
}

class Tree {
 public:
  explicit Tree(fs::path root) : root_(std::move(root)) {}

  const Headings& HeadingsOfFile(const fs::path& path) {
    const std::string key = path.lexically_normal().string();
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, HeadingsOf(Lines(root_ / key))).first;
    return it->second;
  }
  bool Exists(const fs::path& relative) const { return fs::exists(root_ / relative); }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
  std::map<std::string, Headings> cache_;
};

// `line` without its inline code spans, which hold examples, not links.
std::string WithoutCodeSpans(const std::string& line) {
  std::string out;
  bool in_code = false;
  for (char c : line) {
    if (c == '`')
      in_code = !in_code;
    else if (!in_code)
      out += c;
  }
  return out;
}

// Problems with the links of one Markdown file (`file` relative to the root).
std::vector<std::string> CheckMarkdownLinks(Tree& tree, const fs::path& file,
                                            const std::vector<std::string>& lines) {
  static const std::regex link(R"re(\]\(([^)\s]+)\))re");
  static const std::regex scheme(R"re(^[a-z]+:)re");
  std::vector<std::string> problems;
  bool fenced = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].starts_with("```")) fenced = !fenced;
    if (fenced) continue;
    const std::string text = WithoutCodeSpans(lines[i]);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), link);
         it != std::sregex_iterator(); ++it) {
      const std::string target = (*it)[1].str();
      if (std::regex_search(target, scheme)) continue;
      const std::string where = file.string() + ":" + std::to_string(i + 1) + ": " + target;
      const size_t hash = target.find('#');
      const std::string path = target.substr(0, hash);
      const fs::path resolved =
          path.empty() ? file : (file.parent_path() / path).lexically_normal();
      if (!tree.Exists(resolved)) {
        problems.push_back(where + ": no such file");
        continue;
      }
      if (hash == std::string::npos || resolved.extension() != ".md") continue;
      if (!tree.HeadingsOfFile(resolved).anchors.contains(target.substr(hash + 1)))
        problems.push_back(where + ": no such heading");
    }
  }
  return problems;
}

// Problems with the citations in one file that is not Markdown: comments,
// scripts, build files.
std::vector<std::string> CheckCitations(Tree& tree, const fs::path& file,
                                        const std::vector<std::string>& lines) {
  static const std::regex citation(
      R"re((bench/README\.md|bench/HISTORY\.md|bench/results/[\w.-]+\.txt)re"
      R"re(|docs/[\w-]+\.md)(#[\w-]+)?)re");
  // A history entry cited by its date, possibly on the comment's next line.
  static const std::regex dated(R"re(^[\s,/*#(]*(\d{4}-\d{2}-\d{2}))re");
  std::vector<std::string> problems;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    for (auto it = std::sregex_iterator(line.begin(), line.end(), citation);
         it != std::sregex_iterator(); ++it) {
      const std::string path = (*it)[1].str();
      const std::string anchor = (*it)[2].matched ? (*it)[2].str().substr(1) : "";
      const std::string where = file.string() + ":" + std::to_string(i + 1) + ": " + (*it)[0].str();
      if (!tree.Exists(path)) {
        problems.push_back(where + ": no such file");
        continue;
      }
      if (!anchor.empty()) {
        if (path.ends_with(".md") && !tree.HeadingsOfFile(path).anchors.contains(anchor))
          problems.push_back(where + ": no such heading");
        continue;
      }
      if (path == "bench/README.md") {
        problems.push_back(where + ": cite a section (bench/README.md#...)");
      } else if (path == "bench/HISTORY.md") {
        std::string after = line.substr(it->position() + it->length());
        if (i + 1 < lines.size()) after += "\n" + lines[i + 1];
        std::smatch d;
        if (!std::regex_search(after, d, dated))
          problems.push_back(where + ": cite an entry (an anchor, or the entry's date)");
        else if (!tree.HeadingsOfFile(path).dates.contains(d[1].str()))
          problems.push_back(where + ": no entry dated " + d[1].str());
      }
    }
  }
  return problems;
}

// The files to read, relative to the root: the tree's text files, without
// the raw benchmark and test outputs (quoted, not cited) and fuzz corpora.
std::vector<fs::path> SourceFiles(const fs::path& root) {
  static const std::set<std::string> skipped = {"bench/results", "tests/results",
                                                "tests/fuzz/corpus"};
  std::vector<fs::path> files = {"README.md", "CMakeLists.txt"};
  for (const char* top :
       {"agent", "bpf", "exporters", "tests", "bench", "scripts", "packaging", "docs", ".ci"}) {
    if (!fs::exists(root / top)) continue;
    for (auto it = fs::recursive_directory_iterator(root / top);
         it != fs::recursive_directory_iterator(); ++it) {
      const fs::path relative = it->path().lexically_relative(root);
      if (it->is_directory() && skipped.contains(relative.string())) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) files.push_back(relative);
    }
  }
  return files;
}

TEST(DocLinks, EveryLinkAndCitationLands) {
  Tree tree{fs::path(SOCKEYE_SOURCE_DIR)};
  const std::vector<fs::path> files = SourceFiles(tree.root());
  size_t markdown = 0;
  std::vector<std::string> problems;
  for (const fs::path& file : files) {
    if (file.filename() == "test_doc_links.cc") continue;  // its own examples
    const std::vector<std::string> lines = Lines(tree.root() / file);
    std::vector<std::string> found;
    if (file.extension() == ".md") {
      ++markdown;
      found = CheckMarkdownLinks(tree, file, lines);
    } else {
      found = CheckCitations(tree, file, lines);
    }
    problems.insert(problems.end(), found.begin(), found.end());
  }
  EXPECT_GT(markdown, 10u) << "hardly any Markdown under " << SOCKEYE_SOURCE_DIR;
  for (const std::string& problem : problems) ADD_FAILURE() << problem;
}

// The checks themselves, on a tree of their own.
class DocLinksCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("sockeye-doc-links-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(root_ / "bench/results");
    fs::create_directories(root_ / "docs");
    Write("bench/README.md",
          "# Benchmarks\n\n## Current results\n\n```\n## Not a heading\n```\n"
          "## Machines and noise\n## Machines and noise\n");
    Write("bench/HISTORY.md", "# History\n\n## 2026-12-06 (abc): the goals — met\n");
    Write("bench/results/run_2026-12-06.txt", "figures\n");
    Write("docs/page.md", "# A page: `code` and more\n");
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& relative, const std::string& text) {
    std::ofstream(root_ / relative) << text;
  }
  std::vector<std::string> Citations(const std::string& text) {
    Tree tree{root_};
    std::istringstream in(text);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return CheckCitations(tree, "agent/x.cc", lines);
  }
  // `text` as docs/y.md, and the problems with its links.
  std::vector<std::string> Links(const std::string& text) {
    Write("docs/y.md", text);
    Tree tree{root_};
    return CheckMarkdownLinks(tree, "docs/y.md", Lines(root_ / "docs/y.md"));
  }
  fs::path root_;
};

TEST_F(DocLinksCheck, AnchorsFollowGitHub) {
  Tree tree{root_};
  const Headings& readme = tree.HeadingsOfFile("bench/README.md");
  EXPECT_TRUE(readme.anchors.contains("current-results"));
  EXPECT_TRUE(readme.anchors.contains("machines-and-noise"));
  EXPECT_TRUE(readme.anchors.contains("machines-and-noise-1"));
  EXPECT_FALSE(readme.anchors.contains("not-a-heading"));
  EXPECT_TRUE(
      tree.HeadingsOfFile("bench/HISTORY.md").anchors.contains("2026-12-06-abc-the-goals--met"));
  EXPECT_TRUE(tree.HeadingsOfFile("docs/page.md").anchors.contains("a-page-code-and-more"));
}

TEST_F(DocLinksCheck, CitationsInCode) {
  EXPECT_TRUE(Citations("// (bench/README.md#current-results, bench/results/run_2026-12-06.txt)\n"
                        "// see docs/page.md and bench/HISTORY.md, 2026-12-06.\n"
                        "// bench/HISTORY.md#2026-12-06-abc-the-goals--met, bench/HISTORY.md,\n"
                        "// 2026-12-06\n")
                  .empty());
  EXPECT_EQ(Citations("// (see bench/README.md)\n").size(), 1u);
  EXPECT_EQ(Citations("// bench/README.md#current-result\n").size(), 1u);
  EXPECT_EQ(Citations("// bench/HISTORY.md, 2026-12-07\n").size(), 1u);
  EXPECT_EQ(Citations("// bench/HISTORY.md\n").size(), 1u);
  EXPECT_EQ(Citations("// bench/results/run_2026-12-07.txt\n").size(), 1u);
  EXPECT_EQ(Citations("// docs/nothing.md\n").size(), 1u);
}

TEST_F(DocLinksCheck, LinksInMarkdown) {
  EXPECT_TRUE(
      Links("## Here\n[a](../bench/README.md#current-results) [b](page.md) [c](https://x.org/y)\n"
            "`[not](a-link.md)` [d](#here) [e](page.md#a-page-code-and-more)\n"
            "```\n[code](missing.md)\n```\n")
          .empty());
  EXPECT_EQ(Links("## Here\n[d](#there)\n").size(), 1u);
  EXPECT_EQ(Links("[a](../bench/README.md#current)\n").size(), 1u);
  EXPECT_EQ(Links("[a](missing.md)\n").size(), 1u);
  EXPECT_EQ(Links("[a](../bench/results/run_2026-12-06.txt)\n").size(), 0u);
}

}  // namespace
}  // namespace sockeye
