// PackReader: header, bounds, checksum, FlatBuffers Verifier, then semantic checks; pack sets.
#include "formats/pack_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>

#include <xxhash.h>

#include "formats/blob.h"
#include "pack_generated.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace fs = std::filesystem;

std::string rank_file_name(int rank, int tp_size) {
  return "rank-" + std::to_string(rank) + "-of-" + std::to_string(tp_size) + ".shardlm";
}

int64_t PackTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) { fail(StatusCode::kFormat, path + ": " + what); }

// Checks a header against the real file size. Shared by read_pack_header and PackReader.
void check_header(const PackHeader& h, uint64_t actual_size, const std::string& path) {
  if (std::memcmp(h.magic, kPackMagic, sizeof h.magic) != 0) bad(path, "not a shardlm pack (bad magic)");
  if (h.endian_mark != kPackEndianMark) bad(path, "written on a machine of the other byte order");
  if (h.format_version != kPackFormatVersion)
    bad(path, "pack format version " + std::to_string(h.format_version) + ", this build reads version " +
                  std::to_string(kPackFormatVersion) + "; re-pack with this shardlm-pack");
  if (XXH3_64bits(&h, kPackHeaderHashedBytes) != h.header_xxh3) bad(path, "header checksum mismatch (corrupt header)");
  if (h.file_size != actual_size)
    bad(path, "file is " + std::to_string(actual_size) + " bytes but its header says " + std::to_string(h.file_size) +
                  (actual_size < h.file_size ? " (truncated: copy or re-pack it)" : " (trailing bytes)"));
  if (h.data_offset != kPackHeaderSize) bad(path, "data section offset " + std::to_string(h.data_offset) + " is not 4096");
  if (h.data_size > actual_size || h.data_offset + h.data_size > h.manifest_offset)
    bad(path, "data section runs into the manifest");
  if (h.manifest_offset > actual_size || h.manifest_size > actual_size - h.manifest_offset)
    bad(path, "manifest section runs past the end of the file");
  if (h.manifest_offset + h.manifest_size != actual_size) bad(path, "manifest does not end at the end of the file");
  // The writer puts the manifest right after the 4096-aligned data section; FlatBuffers needs its
  // buffer aligned (it reads 8-byte scalars in place), so any other offset is refused.
  if (h.data_size % kPackAlignment != 0)
    bad(path, "data section size " + std::to_string(h.data_size) + " is not a multiple of 4096");
  if (h.manifest_offset != h.data_offset + h.data_size)
    bad(path, "manifest offset " + std::to_string(h.manifest_offset) + " is not where the data section ends (" +
                  std::to_string(h.data_offset + h.data_size) + ")");
  if (h.tp_size == 0 || h.tp_rank >= h.tp_size)
    bad(path, "header rank " + std::to_string(h.tp_rank) + " of tp " + std::to_string(h.tp_size) + " is invalid");
}

// The FlatBuffers Verifier checks a vector's length field, not that its elements are aligned for
// their type; 8-byte elements read in place must be, or the file is corrupt (crafted).
template <typename T>
void require_aligned(const flatbuffers::Vector<T>* v, const std::string& path, const std::string& field) {
  if (v != nullptr && reinterpret_cast<uintptr_t>(v->data()) % alignof(T) != 0)
    bad(path, "manifest field '" + field + "' is not aligned for its element type (corrupt manifest)");
}

template <typename E>
bool enum_in_range(E v, E max) {
  return static_cast<unsigned>(v) <= static_cast<unsigned>(max);
}

}  // namespace

PackHeader read_pack_header(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(StatusCode::kIo, path + ": cannot open: " + std::strerror(errno));
  PackHeader h{};
  const off_t size = ::lseek(fd, 0, SEEK_END);
  const ssize_t n = ::pread(fd, &h, sizeof h, 0);
  ::close(fd);
  if (size < static_cast<off_t>(kPackHeaderSize) || n != static_cast<ssize_t>(sizeof h))
    bad(path, "file is " + std::to_string(size) + " bytes, shorter than the 4096-byte pack header (truncated?)");
  check_header(h, static_cast<uint64_t>(size), path);
  return h;
}

std::unique_ptr<PackReader> PackReader::open(const std::string& path) {
  std::unique_ptr<PackReader> r(new PackReader());
  r->file_ = std::make_unique<MappedFile>(path);
  r->load();
  return r;
}

void PackReader::load() {
  const std::string& path = file_->path();
  const uint64_t size = file_->size();
  if (size < kPackHeaderSize)
    bad(path, "file is " + std::to_string(size) + " bytes, shorter than the 4096-byte pack header (truncated?)");
  std::memcpy(&header_, file_->data(), sizeof header_);
  check_header(header_, size, path);

  // Manifest: checksum first, then the FlatBuffers Verifier.
  const uint8_t* mbuf = file_->data() + header_.manifest_offset;
  if (XXH3_64bits(mbuf, header_.manifest_size) != header_.manifest_xxh3)
    bad(path, "manifest checksum mismatch (the file is corrupt; re-copy or re-pack it)");
  flatbuffers::Verifier verifier(mbuf, header_.manifest_size, 64, 10'000'000);
  if (!fb::ManifestBufferHasIdentifier(mbuf) || !fb::VerifyManifestBuffer(verifier))
    bad(path, "manifest fails FlatBuffers verification");
  const fb::Manifest* m = fb::GetManifest(mbuf);

  // Semantics the Verifier cannot see.
  if (m->format_version() != kPackFormatVersion) bad(path, "manifest.format_version disagrees with the header");
  if (!enum_in_range(m->weight_dtype(), fb::DType_MAX)) bad(path, "manifest.weight_dtype is out of range");
  weight_dtype_ = static_cast<DType>(m->weight_dtype());
  if (weight_dtype_ == DType::kF8E4M3)
    bad(path,
        "manifest.weight_dtype is f8e4m3, a KV cache type (weights: f32, f16, bf16, int8, int4, "
        "int4g128)");
  embedding_dtype_ = weight_dtype_;
  if (is_quantized(weight_dtype_)) {
    if (!enum_in_range(m->embedding_dtype(), fb::DType_MAX)) bad(path, "manifest.embedding_dtype is out of range");
    embedding_dtype_ = static_cast<DType>(m->embedding_dtype());
    if (embedding_dtype_ == DType::kF8E4M3)
      bad(path, "manifest.embedding_dtype is f8e4m3, a KV cache type");
  }
  packer_version_ = m->packer_version() ? m->packer_version()->str() : "";
  created_unix_ = m->created_unix();
  if (m->pack_id() != header_.pack_id) bad(path, "manifest.pack_id disagrees with the header");

  const fb::ModelConfig* fc = m->config();
  if (!enum_in_range(fc->family(), fb::Family_MAX)) bad(path, "config.family is out of range");
  const fb::RopeScaling* rs = fc->rope_scaling();
  if (rs != nullptr && !enum_in_range(rs->type(), fb::RopeScalingType_MAX)) bad(path, "config.rope_scaling.type is out of range");
  ModelConfig& c = config_;
  c.family = static_cast<Family>(fc->family());
  c.architecture = fc->architecture() ? fc->architecture()->str() : "";
  c.n_vocab = fc->n_vocab();
  c.n_embd = fc->n_embd();
  c.n_ff = fc->n_ff();
  c.n_layer = fc->n_layer();
  c.n_head = fc->n_head();
  c.n_head_kv = fc->n_head_kv();
  c.head_dim = fc->head_dim();
  c.max_position_embeddings = fc->max_position_embeddings();
  c.rms_norm_eps = fc->rms_norm_eps();
  c.rope_theta = fc->rope_theta();
  if (rs != nullptr) {
    c.rope_scaling.type = static_cast<RopeScalingType>(rs->type());
    c.rope_scaling.factor = rs->factor();
    c.rope_scaling.low_freq_factor = rs->low_freq_factor();
    c.rope_scaling.high_freq_factor = rs->high_freq_factor();
    c.rope_scaling.original_max_position_embeddings = rs->original_max_position_embeddings();
  }
  c.tie_word_embeddings = fc->tie_word_embeddings();
  c.attention_bias = fc->attention_bias();
  c.o_proj_bias = fc->o_proj_bias();
  c.qk_norm = fc->qk_norm();
  c.sliding_window = fc->sliding_window();
  c.bos_token_id = fc->bos_token_id();
  require_aligned(fc->eos_token_ids(), path, "config.eos_token_ids");
  if (fc->eos_token_ids()) c.eos_token_ids.assign(fc->eos_token_ids()->begin(), fc->eos_token_ids()->end());
  c.source_dtype = fc->source_dtype() ? fc->source_dtype()->str() : "";
  validate_model_config(c, path + " (manifest.config)");

  const fb::ParallelLayout* fp = m->parallel();
  if (fp->tp_size() != static_cast<int32_t>(header_.tp_size) || fp->tp_rank() != static_cast<int32_t>(header_.tp_rank))
    bad(path, "manifest.parallel rank/tp disagree with the header");
  try {
    parallel_ = make_parallel_layout(c, fp->tp_size(), fp->tp_rank());
  } catch (const Error& e) {
    bad(path, std::string("manifest.parallel: ") + e.what());
  }
  const ParallelLayout& p = parallel_;
  if (fp->n_head_local() != p.n_head_local || fp->n_head_kv_local() != p.n_head_kv_local ||
      fp->head_start() != p.head_start || fp->kv_head_start() != p.kv_head_start || fp->n_ff_local() != p.n_ff_local ||
      fp->ff_start() != p.ff_start || fp->vocab_start() != p.vocab_start || fp->n_vocab_local() != p.n_vocab_local)
    bad(path, "manifest.parallel does not match the split shardlm derives from the config (packed by another version?)");

  if (const fb::MemoryPlan* fm = m->plan()) {
    if (!enum_in_range(fm->kv_dtype(), fb::DType_MAX)) bad(path, "plan.kv_dtype is out of range");
    if (!is_kv_dtype(static_cast<DType>(fm->kv_dtype())))
      bad(path, std::string("plan.kv_dtype is ") + dtype_name(static_cast<DType>(fm->kv_dtype())) +
                    ", not a KV cache type (f32, f16, bf16, f8e4m3)");
    plan_.target = fm->target() ? fm->target()->str() : "";
    plan_.device_total_bytes = fm->device_total_bytes();
    plan_.mem_fraction = fm->mem_fraction();
    plan_.budget_bytes = fm->budget_bytes();
    plan_.weight_bytes = fm->weight_bytes();
    plan_.workspace_bytes = fm->workspace_bytes();
    plan_.reserve_bytes = fm->reserve_bytes();
    plan_.kv_bytes_per_token = fm->kv_bytes_per_token();
    plan_.kv_tokens = fm->kv_tokens();
    plan_.kv_dtype = static_cast<DType>(fm->kv_dtype());
    plan_.n_ctx = fm->n_ctx();
    plan_.max_batch = fm->max_batch();
    plan_.max_batch_tokens = fm->max_batch_tokens();
    plan_.fits = fm->fits();
  }

  // Tensors: bounds, alignment, sizes, then the expected list for this config and rank.
  const uint8_t* data = file_->data() + header_.data_offset;
  for (const fb::Tensor* t : *m->tensors()) {
    PackTensor pt;
    pt.name = t->name()->str();
    const std::string where = "tensor '" + pt.name + "'";
    if (!enum_in_range(t->dtype(), fb::DType_MAX)) bad(path, where + ": dtype out of range");
    if (!enum_in_range(t->split(), fb::SplitKind_MAX)) bad(path, where + ": split kind out of range");
    if (!enum_in_range(t->layout(), fb::Layout_MAX)) bad(path, where + ": layout out of range");
    pt.dtype = static_cast<DType>(t->dtype());
    // Every quantized row is interleaved in groups of 16 blocks (dtype.h); earlier packs were not.
    const fb::Layout layout = is_int4(pt.dtype)          ? fb::Layout_Int4Groups16
                              : pt.dtype == DType::kInt8 ? fb::Layout_Int8Groups16
                                                         : fb::Layout_RowMajor;
    if (t->layout() != layout)
      bad(path, where + ": layout " + fb::EnumNameLayout(t->layout()) + " is not the " + dtype_name(pt.dtype) +
                    " layout this runtime reads (" + fb::EnumNameLayout(layout) +
                    (is_quantized(pt.dtype) ? "); the pack was written by an earlier shardlm-pack: pack the "
                                              "checkpoint again"
                                            : ")"));
    pt.split = static_cast<SplitKind>(t->split());
    pt.split_axis = t->split_axis();
    require_aligned(t->shape(), path, where + ".shape");
    require_aligned(t->global_shape(), path, where + ".global_shape");
    if (t->shape()) pt.shape.assign(t->shape()->begin(), t->shape()->end());
    if (t->global_shape()) pt.global_shape.assign(t->global_shape()->begin(), t->global_shape()->end());
    unsigned __int128 numel = 1;
    for (int64_t d : pt.shape) {
      if (d < 0) bad(path, where + ": negative dimension");
      // (No tensor dimension comes near 2^40; bounding it keeps the size arithmetic exact.)
      if (d > (int64_t{1} << 40)) bad(path, where + ": dimension " + std::to_string(d) + " is too large");
      numel *= static_cast<uint64_t>(d);
    }
    pt.offset = t->offset();
    pt.nbytes = t->nbytes();
    pt.xxh3 = t->xxh3();
    unsigned __int128 want = numel * dtype_size(pt.dtype);
    if (is_quantized(pt.dtype)) {
      if (pt.shape.size() != 2 || pt.shape[1] % quant_scale_inputs(pt.dtype) != 0)
        bad(path, where + ": " + dtype_name(pt.dtype) +
                      " needs a matrix whose rows are whole scale groups of " +
                      std::to_string(quant_scale_inputs(pt.dtype)));
      want = static_cast<unsigned __int128>(pt.shape[0]) * row_bytes(pt.dtype, pt.shape[1]);
    }
    if (want != pt.nbytes) bad(path, where + ": nbytes disagrees with shape and dtype");
    if (pt.offset % kPackAlignment != 0) bad(path, where + ": offset is not 4096-aligned");
    if (pt.offset > header_.data_size || pt.nbytes > header_.data_size - pt.offset)
      bad(path, where + ": bytes lie outside the data section");
    pt.data = data + pt.offset;
    tensors_.push_back(std::move(pt));
  }
  std::sort(tensors_.begin(), tensors_.end(), [](auto& a, auto& b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors_.size(); ++i)
    if (tensors_[i].name == tensors_[i - 1].name) bad(path, "tensor '" + tensors_[i].name + "' appears twice");
  // Every layer has several tensors: a corrupt n_layer must not size the expected list (2^56
  // layers would exhaust memory before any comparison).
  if (c.n_layer > static_cast<int64_t>(tensors_.size()))
    bad(path, "config.n_layer " + std::to_string(c.n_layer) + " is more than the manifest's " +
                  std::to_string(tensors_.size()) + " tensors can hold");
  const auto expected = pack_tensor_specs(c, p, weight_dtype_, embedding_dtype_);
  for (const PackTensorSpec& s : expected) {
    const PackTensor* t = find(s.name);
    if (t == nullptr) bad(path, "tensor '" + s.name + "' is missing");
    if (t->dtype != s.dtype)
      bad(path, "tensor '" + s.name + "' is " + dtype_name(t->dtype) + ", expected " + dtype_name(s.dtype));
    if (t->shape != s.shape || t->global_shape != s.global_shape || t->split != s.split)
      bad(path, "tensor '" + s.name + "' has a shape or split that does not match the config and rank");
  }
  if (expected.size() != tensors_.size()) {
    for (auto& t : tensors_) {
      const bool known = std::any_of(expected.begin(), expected.end(), [&](auto& s) { return s.name == t.name; });
      if (!known) bad(path, "unexpected tensor '" + t.name + "'");
    }
  }

  if (m->files()) {
    for (const fb::Blob* b : *m->files()) {
      blobs_.push_back({b->name()->str(), b->raw_size(), b->xxh3(), b->zstd() ? b->zstd()->data() : nullptr,
                        b->zstd() ? b->zstd()->size() : 0});
    }
  }
  if (m->sources()) {
    for (const fb::SourceFile* s : *m->sources()) sources_.push_back({s->name()->str(), s->size(), s->xxh3()});
  }
}

const PackTensor* PackReader::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const PackTensor& t, std::string_view n) { return t.name < n; });
  return (it != tensors_.end() && it->name == name) ? &*it : nullptr;
}

const PackTensor& PackReader::require(std::string_view name) const {
  const PackTensor* t = find(name);
  if (t == nullptr) bad(path(), "tensor '" + std::string(name) + "' is missing");
  return *t;
}

std::vector<std::string> PackReader::file_names() const {
  std::vector<std::string> out;
  for (auto& b : blobs_) out.push_back(b.name);
  return out;
}

bool PackReader::has_file(std::string_view name) const {
  return std::any_of(blobs_.begin(), blobs_.end(), [&](auto& b) { return b.name == name; });
}

std::string PackReader::file(std::string_view name) const {
  for (auto& b : blobs_)
    if (b.name == name) return open_blob(path(), b.name, b.raw_size, b.xxh3, b.zstd, b.zstd_size);
  bad(path(), "the pack carries no '" + std::string(name) + "'");
}

void PackReader::verify_tensors(const std::function<void(uint64_t, uint64_t)>& progress) const {
  uint64_t total = 0, done = 0;
  for (auto& t : tensors_) total += t.nbytes;
  for (auto& t : tensors_) {
    if (XXH3_64bits(t.data, t.nbytes) != t.xxh3)
      bad(path(), "tensor '" + t.name + "' fails its checksum (the file is corrupt; re-copy or re-pack it)");
    done += t.nbytes;
    if (progress) progress(done, total);
  }
}

PackSet find_pack_set(const std::string& dir, int expected_tp) {
  if (!fs::is_directory(dir)) fail(StatusCode::kIo, dir + ": not a directory (expected a pack directory from shardlm-pack)");
  static const std::regex re(R"(rank-(\d+)-of-(\d+)\.shardlm)");
  std::map<int, std::map<int, std::string>> by_tp;  // tp -> rank -> path
  for (auto& e : fs::directory_iterator(dir)) {
    std::smatch mt;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, mt, re)) by_tp[std::stoi(mt[2])][std::stoi(mt[1])] = e.path().string();
  }
  if (by_tp.empty()) fail(StatusCode::kIo, dir + ": no rank-<r>-of-<N>.shardlm files (pack a model with shardlm-pack first)");
  int tp = 0;
  if (expected_tp > 0) {
    if (!by_tp.count(expected_tp)) {
      std::string have;
      for (auto& [n, r] : by_tp) have += (have.empty() ? "" : ", ") + std::to_string(n);
      fail(StatusCode::kInvalidArg, dir + ": holds a pack for tp " + have + ", not the requested tp " +
                                        std::to_string(expected_tp) + "; re-pack with --tp " + std::to_string(expected_tp) +
                                        " or run with tp " + have);
    }
    tp = expected_tp;
  } else {
    if (by_tp.size() > 1)
      fail(StatusCode::kInvalidArg, dir + ": holds packs for several tp sizes; say which one to use");
    tp = by_tp.begin()->first;
  }
  PackSet set;
  set.dir = dir;
  set.tp_size = tp;
  const auto& ranks = by_tp[tp];
  uint64_t pack_id = 0;
  for (int r = 0; r < tp; ++r) {
    auto it = ranks.find(r);
    if (it == ranks.end())
      fail(StatusCode::kIo, dir + ": " + rank_file_name(r, tp) + " is missing (the pack set is incomplete)");
    const PackHeader h = read_pack_header(it->second);
    if (static_cast<int>(h.tp_rank) != r || static_cast<int>(h.tp_size) != tp)
      fail(StatusCode::kFormat, it->second + ": header says rank " + std::to_string(h.tp_rank) + " of " +
                                    std::to_string(h.tp_size) + ", but the file name says rank " + std::to_string(r) +
                                    " of " + std::to_string(tp));
    if (r == 0) pack_id = h.pack_id;
    else if (h.pack_id != pack_id)
      fail(StatusCode::kFormat, it->second + ": belongs to a different pack than " + ranks.at(0) +
                                    " (pack ids differ); re-pack the directory");
    set.rank_paths.push_back(it->second);
  }
  return set;
}

}  // namespace shardlm
