// safetensors reader: valid single and sharded files, and every malformed-input class the
// reference implementation rejects, each with a message naming the file and tensor/field.
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include "runtime/core/status.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {
using testing::RawTensor;
using testing::TempDir;

RawTensor f32_tensor(const std::string& name, std::vector<int64_t> shape, float base) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<float>(i) * 0.25f;
  RawTensor t{name, "F32", shape, std::vector<uint8_t>(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

// Writes a file whose header is `header_json` followed by `data_len` bytes.
std::string write_raw(const TempDir& dir, const std::string& header_json, size_t data_len, uint64_t declared_len = 0) {
  const uint64_t n = declared_len ? declared_len : header_json.size();
  std::vector<uint8_t> bytes(8 + header_json.size() + data_len, 0x3f);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(header_json.begin(), header_json.end(), bytes.begin() + 8);
  const std::string path = dir / "bad.safetensors";
  testing::write_file(path, bytes);
  return path;
}

// Expects a kFormat error whose message contains every needle.
void expect_format_error(const std::string& path, std::vector<std::string> needles) {
  try {
    SafetensorsFile f(path);
    FAIL() << "expected an error for " << path;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kFormat) << e.what();
    for (auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << "'" << n << "' not in: " << e.what();
  }
}

TEST(Safetensors, ReadsTensorsAndMetadata) {
  TempDir dir;
  auto a = f32_tensor("a", {2, 3}, 1.f), b = f32_tensor("b", {4}, -2.f);
  testing::write_file(dir / "m.safetensors", testing::safetensors_bytes({a, b}));
  SafetensorsFile f(dir / "m.safetensors");
  ASSERT_EQ(f.tensors().size(), 2u);
  const SafeTensor* ta = f.find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta->dtype, DType::kF32);
  EXPECT_EQ(ta->nbytes(), 24u);
  EXPECT_EQ(0, std::memcmp(ta->data, a.bytes.data(), 24));
  EXPECT_EQ(0, std::memcmp(f.find("b")->data, b.bytes.data(), 16));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.find("c"), nullptr);
}

TEST(Safetensors, HeaderLengthOver100MB) {
  TempDir dir;
  expect_format_error(write_raw(dir, "{}", 0, 100'000'001), {"bad.safetensors", "100 MB"});
}

TEST(Safetensors, HeaderLengthPastEndOfFile) {
  TempDir dir;
  expect_format_error(write_raw(dir, "{}", 0, 5000), {"bad.safetensors", "past the end of the file"});
}

TEST(Safetensors, FileShorterThanLengthField) {
  TempDir dir;
  testing::write_file(dir / "bad.safetensors", {1, 2, 3});
  expect_format_error(dir / "bad.safetensors", {"bad.safetensors", "too small"});
}

TEST(Safetensors, HeaderNotJson) {
  TempDir dir;
  expect_format_error(write_raw(dir, "{\"a\": [1,", 0), {"bad.safetensors", "JSON"});
}

TEST(Safetensors, HeaderNotUtf8) {
  TempDir dir;
  expect_format_error(write_raw(dir, "{\"\xff\xfe\": 1}", 0), {"bad.safetensors", "UTF-8"});
}

TEST(Safetensors, UnknownDtype) {
  TempDir dir;
  expect_format_error(write_raw(dir, R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", 2),
                      {"bad.safetensors", "'w'", "unknown dtype 'Q4'"});
}

TEST(Safetensors, ShapeDoesNotMatchByteCount) {
  TempDir dir;
  expect_format_error(write_raw(dir, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20),
                      {"'w'", "24 bytes", "span 20"});
}

TEST(Safetensors, ShapeProductOverflows) {
  TempDir dir;
  expect_format_error(
      write_raw(dir, R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}})", 4),
      {"'w'", "overflow"});
}

TEST(Safetensors, OffsetsPastEndMeanTruncated) {
  TempDir dir;
  expect_format_error(write_raw(dir, R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 10),
                      {"'w'", "truncated"});
}

TEST(Safetensors, TruncatedRealFile) {
  TempDir dir;
  auto bytes = testing::safetensors_bytes({f32_tensor("a", {8}, 0.f), f32_tensor("b", {8}, 1.f)});
  bytes.resize(bytes.size() - 5);
  testing::write_file(dir / "bad.safetensors", bytes);
  expect_format_error(dir / "bad.safetensors", {"bad.safetensors", "'b'", "truncated"});
}

TEST(Safetensors, OverlappingOffsets) {
  TempDir dir;
  expect_format_error(write_raw(dir, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},
                                         "b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 24),
                      {"'b'", "overlaps"});
}

TEST(Safetensors, GapBetweenTensors) {
  TempDir dir;
  expect_format_error(write_raw(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
                                         "b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", 20),
                      {"'b'", "gap"});
}

TEST(Safetensors, TrailingBytes) {
  TempDir dir;
  expect_format_error(write_raw(dir, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 12),
                      {"bad.safetensors", "trailing"});
}

TEST(Safetensors, MissingField) {
  TempDir dir;
  expect_format_error(write_raw(dir, R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8), {"'a'", "'shape'"});
}

TEST(Safetensors, NonFloatDtypeIsReadButNotAWeightType) {
  TempDir dir;
  RawTensor ids{"ids", "I64", {2}, std::vector<uint8_t>(16, 0)};
  testing::write_file(dir / "m.safetensors", testing::safetensors_bytes({ids}));
  SafetensorsFile f(dir / "m.safetensors");
  EXPECT_FALSE(f.find("ids")->dtype.has_value());
  EXPECT_EQ(f.find("ids")->dtype_name, "I64");
}

TEST(Checkpoint, ShardedThroughIndex) {
  TempDir dir;
  testing::TinySpec spec;
  spec.shards = 3;
  auto ck = testing::write_tiny_checkpoint(dir.path(), spec);
  Checkpoint c(dir.path());
  EXPECT_EQ(c.files().size(), 3u);
  for (auto& [name, values] : ck.values) {
    const SafeTensor* t = c.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(0, std::memcmp(t->data, values.data(), values.size() * 4)) << name;
  }
}

TEST(Checkpoint, IndexNamingMissingFile) {
  TempDir dir;
  testing::TinySpec spec;
  spec.shards = 2;
  testing::write_tiny_checkpoint(dir.path(), spec);
  std::filesystem::remove(dir / "model-00002-of-00002.safetensors");
  try {
    Checkpoint c(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kIo);
    EXPECT_NE(std::string(e.what()).find("model-00002-of-00002.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.safetensors.index.json"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, IndexListsTensorTheFileLacks) {
  TempDir dir;
  testing::TinySpec spec;
  spec.shards = 2;
  testing::write_tiny_checkpoint(dir.path(), spec);
  auto idx = nlohmann::json::parse(testing::read_file(dir / "model.safetensors.index.json"));
  idx["weight_map"]["model.extra.weight"] = "model-00001-of-00002.safetensors";
  testing::write_text(dir / "model.safetensors.index.json", idx.dump());
  try {
    Checkpoint c(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kFormat);
    EXPECT_NE(std::string(e.what()).find("model.extra.weight"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, NoSafetensorsFiles) {
  TempDir dir;
  testing::write_text(dir / "config.json", "{}");
  try {
    Checkpoint c(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kIo);
    EXPECT_NE(std::string(e.what()).find("no *.safetensors"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace shardlm
