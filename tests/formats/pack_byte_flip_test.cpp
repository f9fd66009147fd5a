// Byte-flip sweep over one rank file of a real (tiny) pack, packed at tp 1: every byte of the
// 4 KiB header and of the FlatBuffers manifest is flipped (xor 0xFF, and xor 0x01 on every byte
// but a 1-in-64 sample of the unused header padding), first as plain corruption, then "resealed":
// the manifest and header checksums recomputed after the flip (manifest bytes: xor 0xFF and each
// single bit), so the corruption gets past the checksums into the FlatBuffers Verifier and the
// semantic checks, as a crafted file would. 200 evenly spaced data-section bytes are flipped too.
// Every variant must either open, or fail with shardlm::Error (kFormat) whose message names the
// file; nothing else may escape, and what opens must be safe to use (tensor bytes inside the
// mapping, carried files readable or refused with an Error).
// Not covered: multi-byte corruptions, truncation and the pack-set checks (pack_errors_test),
// and what the engine does with a pack whose manifest values were resealed (config values that
// pass every check, e.g. rope_theta, are trusted by design).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "formats/blob.h"
#include "formats/pack_format.h"
#include "formats/pack_reader.h"
#include "packer/packer.h"
#include "runtime/core/status.h"
#include "tiny_checkpoint.h"

// GCC defines __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__; clang answers __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHARDLM_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SHARDLM_UNDER_SANITIZER 1
#endif
#endif
#ifndef SHARDLM_UNDER_SANITIZER
#define SHARDLM_UNDER_SANITIZER 0
#endif

namespace shardlm {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

enum class Result { kOpened, kError, kOtherException };

struct Outcome {
  Result result = Result::kOpened;
  StatusCode code = StatusCode::kOk;
  std::string message;
};

// Tallies of one sweep, printed at the end of each test so the report can quote them.
struct Tally {
  explicit Tally(size_t path_length) : path_len(path_length) {}
  size_t path_len;
  int variants = 0, opened = 0, errors = 0;
  std::map<std::string, int> by_message;  // message with the path and numbers cut off

  void add(const Outcome& o) {
    ++variants;
    if (o.result == Result::kOpened) {
      ++opened;
      return;
    }
    ++errors;
    // Group by the message without the path, numbers and quoted names.
    std::string m = o.message.substr(std::min(o.message.size(), path_len + 2)), g;
    bool quoted = false;
    for (char ch : m) {
      if (ch == '\'') quoted = !quoted;
      if (quoted) continue;
      if (std::isdigit(static_cast<unsigned char>(ch))) {
        if (g.empty() || g.back() != '#') g += '#';
      } else {
        g += ch;
      }
    }
    ++by_message[g.substr(0, 70)];
  }
  void print(const char* what) const {
    std::printf("[ sweep    ] %s: %d variants, %d failed to open with an Error, %d opened\n", what,
                variants, errors, opened);
    for (auto& [m, n] : by_message) std::printf("[ sweep    ]   %5d  %s...\n", n, m.c_str());
  }
};

class PackByteFlip : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#if !SHARDLM_UNDER_SANITIZER  // (the sanitizers reserve terabytes of address space)
    // A corrupt size that the reader trusted once made it allocate until the OOM killer came;
    // with a cap the same bug fails here (allocation failure) instead of taking the machine.
    const rlimit cap{4ull << 30, 4ull << 30};
    ::setrlimit(RLIMIT_AS, &cap);
#endif
    dir_ = new TempDir();
    testing::write_tiny_checkpoint(*dir_ / "hf", {});
    PackOptions o;
    o.model_dir = *dir_ / "hf";
    o.out_dir = *dir_ / "pack";
    o.tp_size = 1;
    o.plan.device_total_bytes = 1ull << 30;
    const PackResult r = pack_checkpoint(o);
    original_ = testing::read_file(r.rank_paths.at(0));
    auto pack = PackReader::open(r.rank_paths.at(0));
    header_ = pack->header();
    for (const PackTensor& t : pack->tensors()) tensors_.push_back({t.name, t.offset, t.nbytes});
    file_names_ = pack->file_names();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    // A fresh copy per test, under the rank file's own name, patched in place per variant.
    path_ = *dir_ / ("flip-" +
                     std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::create_directories(path_);
    path_ += "/rank-0-of-1.shardlm";
    testing::write_file(path_, original_);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void put(uint64_t pos, const void* bytes, size_t n) {
    ASSERT_EQ(::pwrite(fd_, bytes, n, static_cast<off_t>(pos)), static_cast<ssize_t>(n));
  }
  void put_byte(uint64_t pos, uint8_t v) {
    put(pos, &v, 1);
  }
  // Writes `h` as the file's header after recomputing its header checksum.
  void put_sealed_header(PackHeader h) {
    h.header_xxh3 = xxh3_64(&h, kPackHeaderHashedBytes);
    put(0, &h, sizeof h);
  }

  // Opens the variant; when it opens, uses everything the runtime reads from a pack so that a
  // bad pointer or size would show up here (under ASan as a report, otherwise as a crash).
  Outcome open_variant(bool verify_tensors) {
    Outcome o;
    try {
      auto pack = PackReader::open(path_);
      const uint8_t* begin = pack->mapping().data();
      const uint8_t* end = begin + pack->mapping().size();
      for (const PackTensor& t : pack->tensors()) {
        EXPECT_TRUE(t.data >= begin && t.nbytes <= static_cast<uint64_t>(end - t.data))
            << path_ << ": tensor '" << t.name << "' points outside the mapping";
      }
      for (const std::string& f : pack->file_names()) {
        try {
          (void)pack->file(f);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
        }
      }
      if (verify_tensors) pack->verify_tensors();
      o.result = Result::kOpened;
    } catch (const Error& e) {
      o.result = Result::kError;
      o.code = e.code();
      o.message = e.what();
    } catch (const std::exception& e) {
      o.result = Result::kOtherException;
      o.message = e.what();
    } catch (...) {
      o.result = Result::kOtherException;
      o.message = "(not a std::exception)";
    }
    return o;
  }

  // The checks every failure must pass: an Error (not another exception), kFormat, a message
  // that names the file.
  void expect_clear_error(const Outcome& o, uint64_t pos, const char* variant) {
    ASSERT_NE(o.result, Result::kOtherException)
        << variant << " at byte " << pos << ": a non-Error exception escaped: " << o.message;
    if (o.result != Result::kError) return;
    EXPECT_EQ(o.code, StatusCode::kFormat) << variant << " at byte " << pos << ": " << o.message;
    EXPECT_NE(o.message.find(path_), std::string::npos)
        << variant << " at byte " << pos << ": the message does not name the file: " << o.message;
  }

  static bool in_manifest(uint64_t pos) {
    return pos >= header_.manifest_offset;
  }

  static TempDir* dir_;
  static std::vector<uint8_t> original_;
  static PackHeader header_;
  struct TensorRange {
    std::string name;
    uint64_t offset, nbytes;
  };
  static std::vector<TensorRange> tensors_;
  static std::vector<std::string> file_names_;
  std::string path_;
  int fd_ = -1;
};

TempDir* PackByteFlip::dir_ = nullptr;
std::vector<uint8_t> PackByteFlip::original_;
PackHeader PackByteFlip::header_{};
std::vector<PackByteFlip::TensorRange> PackByteFlip::tensors_;
std::vector<std::string> PackByteFlip::file_names_;

TEST_F(PackByteFlip, TheFixtureIsWhatTheSweepAssumes) {
  EXPECT_EQ(header_.tp_size, 1u);
  EXPECT_EQ(original_.size(), header_.file_size);
  EXPECT_GT(header_.manifest_size, 512u);
  EXPECT_FALSE(tensors_.empty());
  EXPECT_FALSE(file_names_.empty());  // carried files: the zstd path is swept too
  const Outcome o = open_variant(true);
  EXPECT_EQ(o.result, Result::kOpened) << o.message;
}

// Plain corruption: the header checksum covers bytes 0..79 (and itself), the manifest checksum
// the whole manifest, so every such flip fails; the unused rest of the header page is not
// covered and a flip there is harmless.
TEST_F(PackByteFlip, EveryHeaderAndManifestByte) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<uint64_t> positions;
  for (uint64_t p = 0; p < kPackHeaderSize; ++p) positions.push_back(p);
  for (uint64_t p = header_.manifest_offset; p < header_.file_size; ++p) positions.push_back(p);
  Tally tally(path_.size()), padding(path_.size());
  for (uint8_t pattern : {uint8_t{0xFF}, uint8_t{0x01}}) {
    for (uint64_t pos : positions) {
      const bool padding_byte = pos >= sizeof(PackHeader) && pos < kPackHeaderSize;
      if (pattern == 0x01 && padding_byte && pos % 64 != 0) continue;  // a sample of the padding
      put_byte(pos, original_[pos] ^ pattern);
      const Outcome o = open_variant(padding_byte);
      put_byte(pos, original_[pos]);
      expect_clear_error(o, pos, pattern == 0xFF ? "xor 0xFF" : "xor 0x01");
      if (padding_byte) {
        EXPECT_EQ(o.result, Result::kOpened) << "header padding byte " << pos << ": " << o.message;
        padding.add(o);
      } else {
        EXPECT_EQ(o.result, Result::kError)
            << "byte " << pos << " flipped and the file still opens";
        tally.add(o);
      }
    }
  }
  tally.print("header fields + manifest, plain flips (xor 0xFF and 0x01)");
  padding.print("header padding (bytes 88..4095), plain flips");
  EXPECT_EQ(tally.opened, 0);
  EXPECT_EQ(tally.variants, 2 * static_cast<int>(sizeof(PackHeader) + header_.manifest_size));
  std::printf("[ sweep    ] %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// Resealed header: each byte of the hashed header fields flipped, header checksum recomputed.
// Every field is checked against the file or the manifest, so every variant must fail.
TEST_F(PackByteFlip, ResealedHeaderFields) {
  Tally tally(path_.size());
  PackHeader h{};
  std::memcpy(&h, original_.data(), sizeof h);
  for (uint8_t pattern : {uint8_t{0xFF}, uint8_t{0x01}}) {
    for (uint64_t pos = 0; pos < kPackHeaderHashedBytes; ++pos) {
      PackHeader f = h;
      reinterpret_cast<uint8_t*>(&f)[pos] ^= pattern;
      put_sealed_header(f);
      const Outcome o = open_variant(true);
      put(0, &h, sizeof h);
      expect_clear_error(o, pos, "resealed header");
      EXPECT_EQ(o.result, Result::kError) << "resealed header byte " << pos << " still opens";
      tally.add(o);
    }
  }
  tally.print("header fields, resealed");
  EXPECT_EQ(tally.opened, 0);
}

// Resealed manifest: each manifest byte flipped (xor 0xFF, and each of its 8 bits alone), the
// manifest checksum (and with it the header checksum) recomputed, so the bytes reach the
// FlatBuffers Verifier and the semantic checks. Some variants legitimately open (a float of the
// memory plan, a byte of a string, a checksum of a carried file that is then refused on read); the
// rest must fail cleanly.
TEST_F(PackByteFlip, ResealedManifestBytes) {
  const auto t0 = std::chrono::steady_clock::now();
  PackHeader h{};
  std::memcpy(&h, original_.data(), sizeof h);
  const uint8_t* manifest = original_.data() + h.manifest_offset;
  std::vector<uint8_t> m(manifest, manifest + h.manifest_size);
  Tally tally(path_.size());
  int verifier_failures = 0, semantic_failures = 0;
  const std::vector<uint8_t> patterns = {0xFF, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80};
  for (uint8_t pattern : patterns) {
    for (uint64_t i = 0; i < h.manifest_size; ++i) {
      m[i] ^= pattern;
      PackHeader f = h;
      f.manifest_xxh3 = xxh3_64(m.data(), m.size());
      put_byte(h.manifest_offset + i, m[i]);
      put_sealed_header(f);
      const Outcome o = open_variant(true);
      m[i] ^= pattern;
      put_byte(h.manifest_offset + i, m[i]);
      put(0, &h, sizeof h);
      expect_clear_error(o, h.manifest_offset + i, "resealed manifest");
      EXPECT_EQ(o.message.find("checksum mismatch"), std::string::npos)
          << "the resealed variant was refused by a checksum, so the sweep does not reach the "
             "checks behind it: "
          << o.message;
      if (o.result == Result::kError) {
        (o.message.find("FlatBuffers verification") != std::string::npos ? verifier_failures
                                                                         : semantic_failures)++;
      }
      tally.add(o);
    }
  }
  tally.print("manifest, resealed (xor 0xFF and each single bit)");
  EXPECT_EQ(tally.variants, static_cast<int>(patterns.size() * h.manifest_size));
  // The sweep reaches both the Verifier and the checks behind it.
  EXPECT_GT(verifier_failures, 0);
  EXPECT_GT(semantic_failures, 0);
  std::printf("[ sweep    ] %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// Data section: opening does not hash tensors, so every variant opens; verify_tensors() then
// fails naming the file and the tensor whose bytes were hit, or passes when the byte is
// alignment padding between tensors.
TEST_F(PackByteFlip, DataSectionSample) {
  const uint64_t begin = header_.data_offset, size = header_.data_size;
  constexpr int kSamples = 200;
  int caught = 0, padding = 0;
  for (int s = 0; s < kSamples; ++s) {
    const uint64_t pos =
        begin + size * static_cast<uint64_t>(s) / kSamples + static_cast<uint64_t>(s % 7);
    ASSERT_LT(pos, header_.manifest_offset);
    const TensorRange* hit = nullptr;
    for (const TensorRange& t : tensors_)
      if (pos - begin >= t.offset && pos - begin < t.offset + t.nbytes) hit = &t;
    put_byte(pos, original_[pos] ^ 0xFF);
    const Outcome unverified = open_variant(false);
    const Outcome verified = open_variant(true);
    put_byte(pos, original_[pos]);
    EXPECT_EQ(unverified.result, Result::kOpened) << "byte " << pos << ": " << unverified.message;
    expect_clear_error(verified, pos, "data byte");
    if (hit == nullptr) {
      ++padding;
      EXPECT_EQ(verified.result, Result::kOpened)
          << "padding byte " << pos << ": " << verified.message;
    } else {
      ++caught;
      EXPECT_EQ(verified.result, Result::kError) << "byte " << pos << " of tensor '" << hit->name
                                                 << "' flipped and verify_tensors() passes";
      EXPECT_NE(verified.message.find("tensor '" + hit->name + "' fails its checksum"),
                std::string::npos)
          << verified.message;
    }
  }
  std::printf(
      "[ sweep    ] data section: %d bytes flipped, %d in tensors (all caught by "
      "verify_tensors), %d in alignment padding (opened and verified)\n",
      kSamples, caught, padding);
  EXPECT_GT(caught, kSamples / 2);
}

}  // namespace
}  // namespace shardlm
