// Every file in fixtures/invalid/ (the verifier's golden failures and the
// crash inputs scripts/fuzz.sh kept, fuzz-<target>-<hash>) replayed through
// every fuzz target's entry point: none may crash, leak or trip a check.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz.h"

namespace xsr::fuzz {
namespace {

std::string fixtures_dir() {
  const char* v = std::getenv("FIXTURES");
  return v ? v : "fixtures";
}

std::vector<std::uint8_t> slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(FuzzRegression, EveryTargetIsRegistered) {
  std::vector<std::string> names;
  for (const Target& t : targets()) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names,
            (std::vector<std::string>{"convert", "index", "inspect", "notes", "reader", "relay", "verify"}));
}

TEST(FuzzRegression, InvalidFixturesReplayThroughEveryTarget) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(fixtures_dir() + "/invalid"))
    if (e.is_regular_file() && e.path().extension() != ".md") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 100u) << "fixtures/invalid/ missing";
  for (const auto& f : files) {
    const auto data = slurp(f);
    for (const Target& t : targets()) {
      SCOPED_TRACE(std::string(t.name) + " " + f.filename().string());
      EXPECT_EQ(t.fn(data.data(), data.size()), 0);
    }
  }
}

// The golden failures are bare streams: replayed as they are above, their
// first bytes become the relay's options. Here each goes through the relay
// target as the stream, behind option bytes (fuzz_relay.cc): autodetect
// over pipes and io_uring; strict, plain reads and socketpairs; libxc with
// a 4 KiB hold; converting (a v2/v3 stream passes unchanged).
TEST(FuzzRegression, InvalidFixturesAsStreamsThroughTheRelay) {
  const Target* relay = nullptr;
  for (const Target& t : targets())
    if (std::string(t.name) == "relay") relay = &t;
  ASSERT_NE(relay, nullptr);
  static constexpr std::uint8_t kPrefixes[][6] = {
      {0x00, 0x00, 0x01, 0x00, 0x00, 0x00},
      {0x74, 0x00, 0x2a, 0x00, 0x00, 0x00},
      {0x21, 0x08, 0x07, 0x00, 0x00, 0x00},
      {0xc0, 0x00, 0x05, 0x00, 0x00, 0x00},
  };
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(fixtures_dir() + "/invalid")) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || e.path().extension() != ".bin") continue;
    const auto stream = slurp(e.path());
    for (const auto& p : kPrefixes) {
      std::vector<std::uint8_t> in(std::begin(p), std::end(p));
      in.insert(in.end(), stream.begin(), stream.end());
      SCOPED_TRACE(name + " prefix " + std::to_string(p[0]));
      EXPECT_EQ(relay->fn(in.data(), in.size()), 0);
    }
    ++n;
  }
  EXPECT_GT(n, 100);
}

// Empty and one-byte inputs: the option bytes run out first.
TEST(FuzzRegression, TinyInputs) {
  for (const Target& t : targets()) {
    EXPECT_EQ(t.fn(nullptr, 0), 0) << t.name;
    for (int b = 0; b < 256; ++b) {
      const std::uint8_t one = static_cast<std::uint8_t>(b);
      EXPECT_EQ(t.fn(&one, 1), 0) << t.name;
    }
  }
}

}  // namespace
}  // namespace xsr::fuzz
