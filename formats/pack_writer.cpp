// PackWriter: temp file, pwrite of tensor bytes at their offsets, manifest via FlatBuffers,
// header, fsync, rename.
#include "formats/pack_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <xxhash.h>

#include "formats/pack_format.h"
#include "pack_generated.h"
#include "runtime/core/status.h"

namespace shardlm {

struct PackWriter::Entry {
  PackTensorSpec spec;
  uint64_t offset = 0;  // into the data section
  uint64_t nbytes = 0;
  uint64_t written = 0;
  uint64_t xxh3 = 0;
  XXH3_state_t* state = nullptr;
  ~Entry() {
    if (state != nullptr) XXH3_freeState(state);
  }
};

namespace {

void write_all(int fd, const void* data, size_t n, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(StatusCode::kIo, path + ": write failed: " + std::strerror(errno) +
                                (errno == ENOSPC   ? " (disk full: free space or choose another --out)"
                                 : errno == EFBIG ? " (over the file size limit, ulimit -f: raise it)"
                                                  : ""));
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

}  // namespace

PackWriter::PackWriter(std::string final_path) : final_path_(std::move(final_path)) {
  temp_path_ = final_path_ + ".tmp-" + std::to_string(::getpid());
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail(StatusCode::kIo, temp_path_ + ": cannot create: " + std::strerror(errno));
}

PackWriter::~PackWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_path_.c_str());
}

size_t PackWriter::declare(PackTensorSpec spec) {
  auto e = std::make_unique<Entry>();
  uint64_t numel = 1;
  for (int64_t d : spec.shape) {
    if (d < 0) fail(StatusCode::kInternal, "tensor " + spec.name + " has a negative dimension");
    numel *= static_cast<uint64_t>(d);
  }
  e->nbytes = numel * dtype_size(spec.dtype);
  if (spec.shape.size() == 2) {
    if (is_quantized(spec.dtype) && spec.shape[1] % quant_scale_inputs(spec.dtype) != 0)
      fail(StatusCode::kInternal,
           "tensor " + spec.name + ": rows of " + std::to_string(spec.shape[1]) +
               " are not whole scale groups of " + std::to_string(quant_scale_inputs(spec.dtype)));
    e->nbytes = static_cast<uint64_t>(spec.shape[0]) * row_bytes(spec.dtype, spec.shape[1]);
  }
  e->offset = data_size_;
  data_size_ = align_up(data_size_ + e->nbytes, kPackAlignment);
  e->state = XXH3_createState();
  XXH3_64bits_reset(e->state);
  e->spec = std::move(spec);
  entries_.push_back(std::move(e));
  return entries_.size() - 1;
}

uint64_t PackWriter::tensor_nbytes(size_t index) const { return entries_.at(index)->nbytes; }

void PackWriter::append(size_t index, const void* bytes, size_t n) {
  Entry& e = *entries_.at(index);
  if (e.written + n > e.nbytes)
    fail(StatusCode::kInternal, "tensor " + e.spec.name + ": more bytes written than its shape holds");
  write_all(fd_, bytes, n, kPackHeaderSize + e.offset + e.written, temp_path_);
  XXH3_64bits_update(e.state, bytes, n);
  e.written += n;
}

uint64_t PackWriter::finish(const PackManifestInfo& info) {
  namespace fb = shardlm::fb;
  flatbuffers::FlatBufferBuilder b(1 << 16);

  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  for (auto& ep : entries_) {
    Entry& e = *ep;
    if (e.written != e.nbytes)
      fail(StatusCode::kInternal, "tensor " + e.spec.name + ": " + std::to_string(e.written) + " of " +
                                      std::to_string(e.nbytes) + " bytes written");
    e.xxh3 = XXH3_64bits_digest(e.state);
    tensors.push_back(fb::CreateTensor(
        b, b.CreateString(e.spec.name), static_cast<fb::DType>(e.spec.dtype),
        is_int4(e.spec.dtype)          ? fb::Layout_Int4Groups16
        : e.spec.dtype == DType::kInt8 ? fb::Layout_Int8Groups16
                                       : fb::Layout_RowMajor,
        b.CreateVector(e.spec.shape), b.CreateVector(e.spec.global_shape),
        static_cast<fb::SplitKind>(e.spec.split), e.spec.split_axis, e.offset, e.nbytes, e.xxh3));
  }
  const ModelConfig& c = info.config;
  auto rope = fb::CreateRopeScaling(b, static_cast<fb::RopeScalingType>(c.rope_scaling.type), c.rope_scaling.factor,
                                    c.rope_scaling.low_freq_factor, c.rope_scaling.high_freq_factor,
                                    c.rope_scaling.original_max_position_embeddings);
  auto config = fb::CreateModelConfig(
      b, static_cast<fb::Family>(c.family), b.CreateString(c.architecture), c.n_vocab, c.n_embd, c.n_ff, c.n_layer,
      c.n_head, c.n_head_kv, c.head_dim, c.max_position_embeddings, c.rms_norm_eps, c.rope_theta, rope,
      c.tie_word_embeddings, c.attention_bias, c.o_proj_bias, c.qk_norm, c.sliding_window, c.bos_token_id,
      b.CreateVector(c.eos_token_ids), b.CreateString(c.source_dtype));
  const ParallelLayout& p = info.parallel;
  auto parallel = fb::CreateParallelLayout(b, p.tp_size, p.tp_rank, p.n_head_local, p.n_head_kv_local, p.head_start,
                                           p.kv_head_start, p.n_ff_local, p.ff_start, p.vocab_start, p.n_vocab_local);
  const MemoryPlan& m = info.plan;
  auto plan = fb::CreateMemoryPlan(b, b.CreateString(m.target), m.device_total_bytes, m.mem_fraction, m.budget_bytes,
                                   m.weight_bytes, m.workspace_bytes, m.reserve_bytes, m.kv_bytes_per_token,
                                   m.kv_tokens, static_cast<fb::DType>(m.kv_dtype), m.n_ctx, m.max_batch,
                                   m.max_batch_tokens, m.fits);
  std::vector<flatbuffers::Offset<fb::Blob>> files;
  for (const PackBlob* f : info.files)
    files.push_back(fb::CreateBlob(b, b.CreateString(f->name), f->raw_size, f->xxh3, b.CreateVector(f->zstd)));
  std::vector<flatbuffers::Offset<fb::SourceFile>> sources;
  for (auto& s : info.sources) sources.push_back(fb::CreateSourceFile(b, b.CreateString(s.name), s.size, s.xxh3));
  auto manifest = fb::CreateManifest(b, kPackFormatVersion, b.CreateString(kPackerVersion), info.pack_id,
                                     info.created_unix, static_cast<fb::DType>(info.weight_dtype), config, parallel,
                                     b.CreateVector(tensors), plan, b.CreateVector(files), b.CreateVector(sources),
                                     static_cast<fb::DType>(info.embedding_dtype));
  fb::FinishManifestBuffer(b, manifest);

  PackHeader h{};
  std::memcpy(h.magic, kPackMagic, sizeof h.magic);
  h.format_version = kPackFormatVersion;
  h.endian_mark = kPackEndianMark;
  h.data_offset = kPackHeaderSize;
  h.data_size = data_size_;
  h.manifest_offset = kPackHeaderSize + data_size_;
  h.manifest_size = b.GetSize();
  h.manifest_xxh3 = XXH3_64bits(b.GetBufferPointer(), b.GetSize());
  h.file_size = h.manifest_offset + h.manifest_size;
  h.tp_size = static_cast<uint32_t>(p.tp_size);
  h.tp_rank = static_cast<uint32_t>(p.tp_rank);
  h.pack_id = info.pack_id;
  h.header_xxh3 = XXH3_64bits(&h, kPackHeaderHashedBytes);

  write_all(fd_, b.GetBufferPointer(), b.GetSize(), h.manifest_offset, temp_path_);
  std::vector<uint8_t> header_page(kPackHeaderSize, 0);
  std::memcpy(header_page.data(), &h, sizeof h);
  write_all(fd_, header_page.data(), header_page.size(), 0, temp_path_);
  if (::ftruncate(fd_, static_cast<off_t>(h.file_size)) != 0)
    fail(StatusCode::kIo, temp_path_ + ": cannot set size: " + std::strerror(errno));
  if (::fsync(fd_) != 0) fail(StatusCode::kIo, temp_path_ + ": fsync failed: " + std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  finished_ = true;
  return h.file_size;
}

void PackWriter::commit() {
  if (!finished_) fail(StatusCode::kInternal, temp_path_ + ": commit before finish");
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    fail(StatusCode::kIo, final_path_ + ": cannot rename from " + temp_path_ + ": " + std::strerror(errno));
  committed_ = true;
  // Make the rename durable.
  const std::string dir = std::filesystem::path(final_path_).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace shardlm
