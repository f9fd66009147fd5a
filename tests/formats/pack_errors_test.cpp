// Malformed input for the packer and the pack reader: every class gets the right status and a
// message naming the file, tensor or field; failed packs never leave a loadable or mixed set,
// and never destroy an existing pack.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "formats/blob.h"
#include "formats/pack_format.h"
#include "formats/pack_reader.h"
#include "formats/pack_writer.h"
#include "formats/safetensors.h"
#include "pack_generated.h"
#include "packer/packer.h"
#include "runtime/core/status.h"
#include "tiny_checkpoint.h"

namespace shardlm {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;
using testing::TinySpec;

struct Failure {
  StatusCode code;
  std::string message;
};

Failure failure_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.code(), e.what()};
  }
  ADD_FAILURE() << "expected an Error";
  return {StatusCode::kOk, ""};
}

#define EXPECT_MSG(failure, needle) \
  EXPECT_NE((failure).message.find(needle), std::string::npos) << "'" << (needle) << "' not in: " << (failure).message

PackResult pack(const std::string& model, const std::string& out, int tp = 1) {
  PackOptions o;
  o.model_dir = model;
  o.out_dir = out;
  o.tp_size = tp;
  o.plan.device_total_bytes = 1ull << 30;
  return pack_checkpoint(o);
}

// Rewrites <dir>/model.safetensors after `edit` changes its tensor list.
void edit_tensors(const std::string& dir, const std::function<void(std::vector<testing::RawTensor>&)>& edit) {
  std::vector<testing::RawTensor> raw;
  {
    SafetensorsFile f(dir + "/model.safetensors");
    for (auto& t : f.tensors()) raw.push_back({t.name, t.dtype_name, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes())});
  }
  edit(raw);
  testing::write_file(dir + "/model.safetensors", testing::safetensors_bytes(raw));
}

// Sets a one-byte scalar field (`field`, e.g. fb::Tensor::VT_LAYOUT) of the first manifest tensor
// that `pick` accepts to `value`, recomputes the manifest's and the header's checksums and writes
// the rank file back: a pack whose only fault is that field. Returns the tensor's name ("" when
// no tensor was picked).
std::string edit_tensor_field(const std::string& rank_file, flatbuffers::voffset_t field,
                              uint8_t value, const std::function<bool(const fb::Tensor&)>& pick) {
  PackHeader h = read_pack_header(rank_file);
  auto bytes = testing::read_file(rank_file);
  const uint8_t* m = bytes.data() + h.manifest_offset;
  const fb::Tensor* picked = nullptr;
  for (const fb::Tensor* t : *fb::GetManifest(m)->tensors()) {
    if (pick(*t)) {
      picked = t;
      break;
    }
  }
  if (picked == nullptr) return "";
  // (fb::Tensor derives privately from flatbuffers::Table, whose accessor finds the field.)
  const uint8_t* at = reinterpret_cast<const flatbuffers::Table*>(picked)->GetAddressOf(field);
  if (at == nullptr) return "";
  const std::string name = picked->name()->str();
  bytes[h.manifest_offset + static_cast<size_t>(at - m)] = value;
  h.manifest_xxh3 = xxh3_64(bytes.data() + h.manifest_offset, h.manifest_size);
  h.header_xxh3 = xxh3_64(&h, kPackHeaderHashedBytes);
  std::memcpy(bytes.data(), &h, sizeof h);
  testing::write_file(rank_file, bytes);
  return name;
}

TEST(PackErrors, MissingConfigJson) {
  TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  fs::remove(d / "hf/config.json");
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kIo);
  EXPECT_MSG(f, "hf/config.json");
  EXPECT_MSG(f, "missing");
}

TEST(PackErrors, UnknownArchitecture) {
  TempDir d;
  TinySpec s;
  s.architecture = "FalconForCausalLM";
  s.model_type = "falcon";
  testing::write_tiny_checkpoint(d / "hf", s);
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kUnsupported);
  EXPECT_MSG(f, "FalconForCausalLM");
  EXPECT_MSG(f, "config.json");
}

TEST(PackErrors, MissingTensor) {
  TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  edit_tensors(d / "hf", [](auto& raw) {
    std::erase_if(raw, [](auto& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
  });
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "'model.layers.1.mlp.up_proj.weight' is missing");
  EXPECT_FALSE(fs::exists(d / "out/rank-0-of-1.shardlm"));
}

TEST(PackErrors, UnexpectedShape) {
  TempDir d;
  auto ck = testing::write_tiny_checkpoint(d / "hf", {});
  auto cfg = ck.config;
  cfg["intermediate_size"] = 48;  // checkpoint has 64
  testing::write_text(d / "hf/config.json", cfg.dump());
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "model.safetensors");
  EXPECT_MSG(f, "mlp.gate_proj.weight' has shape [64, 32], config.json implies [48, 32]");
}

TEST(PackErrors, UnexpectedDtype) {
  TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  edit_tensors(d / "hf", [](auto& raw) {
    for (auto& t : raw)
      if (t.name == "model.layers.0.self_attn.k_proj.weight") t.dtype = "I32";
  });
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "'model.layers.0.self_attn.k_proj.weight' has dtype I32");
}

TEST(PackErrors, TruncatedSafetensors) {
  TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  fs::resize_file(d / "hf/model.safetensors", fs::file_size(d / "hf/model.safetensors") - 100);
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "model.safetensors");
  EXPECT_MSG(f, "truncated");
}

TEST(PackErrors, HeaderLengthPastFile) {
  TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  auto bytes = testing::read_file(d / "hf/model.safetensors");
  bytes[5] = 0x7f;  // header length ~ 2^47
  bytes[4] = 0;
  testing::write_file(d / "hf/model.safetensors", bytes);
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "model.safetensors: header length");
}

TEST(PackErrors, OverlappingOffsets) {
  TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  auto bytes = testing::read_file(d / "hf/model.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  auto j = nlohmann::json::parse(header);
  // Point the final norm at the embedding's first bytes: same size, overlapping range.
  const uint64_t len = j["model.norm.weight"]["data_offsets"][1].get<uint64_t>() - j["model.norm.weight"]["data_offsets"][0].get<uint64_t>();
  j["model.norm.weight"]["data_offsets"] = {0, len};
  std::vector<testing::RawTensor> none;
  std::string h = j.dump();
  h.resize(n, ' ');  // keep the header length so data offsets stay valid
  std::copy(h.begin(), h.end(), bytes.begin() + 8);
  testing::write_file(d / "hf/model.safetensors", bytes);
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "overlaps");
}

TEST(PackErrors, IndexNamesMissingFile) {
  TempDir d;
  TinySpec s;
  s.shards = 2;
  testing::write_tiny_checkpoint(d / "hf", s);
  fs::remove(d / "hf/model-00001-of-00002.safetensors");
  auto f = failure_of([&] { pack(d / "hf", d / "out"); });
  EXPECT_EQ(f.code, StatusCode::kIo);
  EXPECT_MSG(f, "model-00001-of-00002.safetensors");
}

TEST(PackErrors, TpNotDividingHeadsOrFf) {
  TempDir d;
  TinySpec s;
  s.n_head = 6;
  s.n_head_kv = 2;
  s.n_embd = 48;
  testing::write_tiny_checkpoint(d / "hf", s);
  auto f = failure_of([&] { pack(d / "hf", d / "out", 4); });
  EXPECT_EQ(f.code, StatusCode::kInvalidArg);
  EXPECT_MSG(f, "--tp 4 does not divide num_attention_heads 6");
  TinySpec s2;
  s2.n_ff = 36;  // 4 heads divide by 4; 36 / 8... use tp 8? heads 4: use ff 66 with tp 4
  s2.n_ff = 66;
  testing::write_tiny_checkpoint(d / "hf2", s2);
  f = failure_of([&] { pack(d / "hf2", d / "out", 4); });
  EXPECT_MSG(f, "intermediate_size 66");
}

TEST(PackErrors, UnwritableOutput) {
  TempDir d;
  testing::write_tiny_checkpoint(d / "hf", {});
  testing::write_text(d / "afile", "x");
  auto f = failure_of([&] { pack(d / "hf", d / "afile/pack"); });
  EXPECT_EQ(f.code, StatusCode::kIo);
  EXPECT_MSG(f, "afile/pack");
}

class PackedFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_tiny_checkpoint(dir_ / "hf", {});
    pack(dir_ / "hf", dir_ / "pack", 2);
    rank0_ = dir_ / "pack/rank-0-of-2.shardlm";
  }
  TempDir dir_;
  std::string rank0_;
};

TEST_F(PackedFixture, CorruptedManifestByte) {
  const PackHeader h = read_pack_header(rank0_);
  auto bytes = testing::read_file(rank0_);
  bytes[h.manifest_offset + h.manifest_size / 2] ^= 0x20;
  testing::write_file(rank0_, bytes);
  auto f = failure_of([&] { PackReader::open(rank0_); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "rank-0-of-2.shardlm");
  EXPECT_MSG(f, "manifest checksum mismatch");
}

TEST_F(PackedFixture, CorruptedHeaderByte) {
  auto bytes = testing::read_file(rank0_);
  bytes[20] ^= 0x01;  // inside file_size
  testing::write_file(rank0_, bytes);
  auto f = failure_of([&] { PackReader::open(rank0_); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "header checksum mismatch");
}

TEST_F(PackedFixture, CorruptedTensorByteFoundByVerify) {
  auto pack_r = PackReader::open(rank0_);
  const PackTensor& t = pack_r->require("blk.1.w_down");
  const uint64_t pos = kPackHeaderSize + t.offset + 3;
  pack_r.reset();
  auto bytes = testing::read_file(rank0_);
  bytes[pos] ^= 0x55;
  testing::write_file(rank0_, bytes);
  auto reopened = PackReader::open(rank0_);  // opening does not hash tensors
  auto f = failure_of([&] { reopened->verify_tensors(); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "tensor 'blk.1.w_down' fails its checksum");
}

TEST_F(PackedFixture, TruncatedPack) {
  fs::resize_file(rank0_, fs::file_size(rank0_) - 1000);
  auto f = failure_of([&] { PackReader::open(rank0_); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "rank-0-of-2.shardlm");
  EXPECT_MSG(f, "truncated");
  fs::resize_file(rank0_, 100);
  f = failure_of([&] { PackReader::open(rank0_); });
  EXPECT_MSG(f, "shorter than the 4096-byte pack header");
}

TEST_F(PackedFixture, NotAPack) {
  testing::write_text(rank0_, std::string(5000, 'x'));
  auto f = failure_of([&] { PackReader::open(rank0_); });
  EXPECT_MSG(f, "bad magic");
}

TEST_F(PackedFixture, MissingRank) {
  fs::remove(dir_ / "pack/rank-1-of-2.shardlm");
  auto f = failure_of([&] { find_pack_set(dir_ / "pack"); });
  EXPECT_EQ(f.code, StatusCode::kIo);
  EXPECT_MSG(f, "rank-1-of-2.shardlm is missing");
}

TEST_F(PackedFixture, WrongTp) {
  auto f = failure_of([&] { find_pack_set(dir_ / "pack", 4); });
  EXPECT_EQ(f.code, StatusCode::kInvalidArg);
  EXPECT_MSG(f, "not the requested tp 4");
  EXPECT_EQ(find_pack_set(dir_ / "pack", 2).rank_paths.size(), 2u);
}

TEST_F(PackedFixture, RanksFromDifferentPacks) {
  TinySpec other;
  other.seed = 99;
  testing::write_tiny_checkpoint(dir_ / "hf2", other);
  pack(dir_ / "hf2", dir_ / "pack2", 2);
  fs::copy_file(dir_ / "pack2/rank-1-of-2.shardlm", dir_ / "pack/rank-1-of-2.shardlm", fs::copy_options::overwrite_existing);
  auto f = failure_of([&] { find_pack_set(dir_ / "pack"); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "rank-1-of-2.shardlm: belongs to a different pack");
}

TEST_F(PackedFixture, RankFileRenamed) {
  fs::rename(dir_ / "pack/rank-1-of-2.shardlm", dir_ / "pack/tmp");
  fs::rename(dir_ / "pack/rank-0-of-2.shardlm", dir_ / "pack/rank-1-of-2.shardlm");
  fs::rename(dir_ / "pack/tmp", dir_ / "pack/rank-0-of-2.shardlm");
  auto f = failure_of([&] { find_pack_set(dir_ / "pack"); });
  EXPECT_MSG(f, "header says rank 1 of 2, but the file name says rank 0 of 2");
}

TEST_F(PackedFixture, FailedRepackKeepsExistingPack) {
  edit_tensors(dir_ / "hf", [](auto& raw) { raw.pop_back(); });
  EXPECT_THROW(pack(dir_ / "hf", dir_ / "pack", 2), Error);
  const PackSet set = find_pack_set(dir_ / "pack");
  for (auto& p : set.rank_paths) PackReader::open(p)->verify_tensors();
}

TEST_F(PackedFixture, RepackWithOtherTpReplacesOldRanks) {
  pack(dir_ / "hf", dir_ / "pack", 1);
  const PackSet set = find_pack_set(dir_ / "pack");
  EXPECT_EQ(set.tp_size, 1);
  EXPECT_FALSE(fs::exists(dir_ / "pack/rank-1-of-2.shardlm"));
}

// A pack written before quantized rows were interleaved in groups of 16 blocks marks its int8 and
// int4 tensors RowMajor: the reader refuses it, naming the tensor and saying to pack again, rather
// than reading its values in the wrong order. The variant is the current pack with one quantized
// tensor's layout field set back to RowMajor and the checksums recomputed.
TEST(PackErrors, QuantizedTensorInTheEarlierLayout) {
  for (DType dt : {DType::kInt4, DType::kInt8, DType::kInt4G128}) {
    SCOPED_TRACE(dtype_name(dt));
    TempDir dir;
    testing::TinySpec spec;
    if (dt == DType::kInt4G128) {  // every matrix's rows whole groups of 128 inputs
      spec.n_embd = 128;
      spec.head_dim = 32;
      spec.n_ff = 256;
    }
    testing::write_tiny_checkpoint(dir / "hf", spec);
    PackOptions o;
    o.model_dir = dir / "hf";
    o.out_dir = dir / "pack";
    o.quantize = dt;
    o.plan.device_total_bytes = 1ull << 30;
    pack_checkpoint(o);
    const std::string rank0 = dir / "pack/rank-0-of-1.shardlm";
    EXPECT_NO_THROW(PackReader::open(rank0));
    const std::string name = edit_tensor_field(
        rank0, fb::Tensor::VT_LAYOUT, fb::Layout_RowMajor, [&](const fb::Tensor& t) {
          if (t.dtype() != static_cast<fb::DType>(dt)) return false;
          EXPECT_EQ(t.layout(), is_int4(dt) ? fb::Layout_Int4Groups16 : fb::Layout_Int8Groups16);
          return true;
        });
    ASSERT_FALSE(name.empty());
    auto f = failure_of([&] { PackReader::open(rank0); });
    EXPECT_EQ(f.code, StatusCode::kFormat);
    EXPECT_MSG(f, "rank-0-of-1.shardlm");
    EXPECT_MSG(f, "tensor '" + name + "'");
    EXPECT_MSG(f, "layout RowMajor");
    EXPECT_MSG(f, "pack the checkpoint again");
  }
}

// An int4 tensor of 32-input rows relabelled int4g128 (one scale per 128 inputs): its rows are
// not whole scale groups, and the reader says so, naming the tensor, before reading any scale.
TEST(PackErrors, Int4G128RowsThatAreNotWholeScaleGroups) {
  TempDir dir;
  testing::write_tiny_checkpoint(dir / "hf", {});  // o_proj: 32 inputs
  PackOptions o;
  o.model_dir = dir / "hf";
  o.out_dir = dir / "pack";
  o.quantize = DType::kInt4;
  o.plan.device_total_bytes = 1ull << 30;
  pack_checkpoint(o);
  const std::string rank0 = dir / "pack/rank-0-of-1.shardlm";
  const std::string name =
      edit_tensor_field(rank0, fb::Tensor::VT_DTYPE, fb::DType_Int4G128, [](const fb::Tensor& t) {
        return t.dtype() == fb::DType_Int4 && t.shape()->Get(1) % 128 != 0;
      });
  ASSERT_FALSE(name.empty());
  auto f = failure_of([&] { PackReader::open(rank0); });
  EXPECT_EQ(f.code, StatusCode::kFormat);
  EXPECT_MSG(f, "tensor '" + name + "'");
  EXPECT_MSG(f, "int4g128 needs a matrix whose rows are whole scale groups of 128");
}

TEST(PackWriterAtomicity, UnfinishedWriterLeavesNothing) {
  TempDir d;
  {
    PackWriter w(d / "rank-0-of-1.shardlm");
    const size_t i = w.declare({"x", DType::kF32, {4}, {4}, SplitKind::kReplicated, -1});
    float v[4] = {1, 2, 3, 4};
    w.append(i, v, sizeof v);
    // destroyed without finish(): as if the packer failed mid-way
  }
  EXPECT_TRUE(fs::is_empty(d.path()));
  // A leftover temporary file from a killed packer is never taken for a rank file.
  testing::write_text(d / "rank-0-of-1.shardlm.tmp-12345", std::string(8192, '\0'));
  auto f = failure_of([&] { find_pack_set(d.path()); });
  EXPECT_MSG(f, "no rank-<r>-of-<N>.shardlm files");
}

}  // namespace
}  // namespace shardlm
