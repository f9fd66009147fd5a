// pack_checkpoint: config -> layouts -> recipes (checked against the checkpoint) -> plans ->
// stream every tensor to every rank's file in a staging folder beside the output -> fsync all ->
// pack.json -> the staging folder replaces the output folder in one rename (see publish()).
#include "packer/packer.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include "formats/blob.h"
#include "formats/hf_config.h"
#include "formats/pack_format.h"
#include "formats/pack_layout.h"
#include "formats/pack_writer.h"
#include "formats/safetensors.h"
#include "packer/gptq_source.h"
#include "packer/progress_bar.h"
#include "packer/recipe.h"
#include "runtime/core/quant.h"
#include "runtime/core/status.h"

namespace shardlm {
namespace fs = std::filesystem;

namespace {

constexpr size_t kChunkBytes = 8u << 20;  // output staging buffer: bounds the packer's own memory

// Files a pack carries when the checkpoint has them.
constexpr const char* kCarriedFiles[] = {"tokenizer.json",       "tokenizer_config.json", "generation_config.json",
                                         "special_tokens_map.json", "chat_template.jinja", "vocab.json",
                                         "merges.txt",           "config.json"};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(StatusCode::kIo, p.string() + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// XXH3 of a whole mapped file, dropping pages as it goes so RSS stays small.
uint64_t hash_mapping(const MappedFile& m) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  constexpr size_t step = 8u << 20;
  for (size_t off = 0; off < m.size(); off += step) {
    const size_t n = std::min(step, m.size() - off);
    XXH3_64bits_update(st, m.data() + off, n);
    m.release(off, n);
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

// Streams one recipe's bytes into `writer`, converting dtype (or quantizing each row, or taking a
// GPTQ source's rows as they are), through a bounded buffer.
void write_recipe(const TensorRecipe& r, const Checkpoint& ckpt, const GptqScheme* gptq,
                  PackWriter& writer, size_t index, std::vector<uint8_t>& buf, ProgressBar& bar,
                  const std::atomic<bool>* stop) {
  const DType out = r.spec.dtype;
  const bool quantize = is_quantized(out);
  std::vector<float> row_f32;  // a source row widened, before it is quantized
  size_t fill = 0;
  auto flush = [&] {
    if (stop != nullptr && stop->load(std::memory_order_relaxed))
      fail(StatusCode::kCancelled, "packing interrupted; the output folder is as it was");
    if (fill == 0) return;
    writer.append(index, buf.data(), fill);
    bar.advance(fill);
    fill = 0;
  };
  for (const SourcePiece& piece : r.pieces) {
    if (gptq != nullptr && is_gptq_source(ckpt, piece.tensor)) {
      const size_t row_out = row_bytes(out, piece.col_end - piece.col_begin);
      if (row_out > buf.size()) buf.resize(row_out);
      for (int64_t row = piece.row_begin; row < piece.row_end;) {
        if (fill + row_out > buf.size()) flush();
        const int64_t n = std::min<int64_t>(piece.row_end - row,
                                            static_cast<int64_t>((buf.size() - fill) / row_out));
        decode_gptq_rows(*gptq, out, ckpt, piece.tensor, row, row + n, piece.col_begin,
                         piece.col_end, buf.data() + fill);
        fill += static_cast<size_t>(n) * row_out;
        row += n;
      }
      continue;
    }
    const SafeTensor& t = *ckpt.find(piece.tensor);
    const DType in = *t.dtype;
    const size_t isz = dtype_size(in);
    const int64_t cols = t.shape.size() >= 2 ? t.shape[1] : 1;
    const int64_t ncols = piece.col_end - piece.col_begin;
    const size_t row_out = row_bytes(out, ncols);
    const size_t row_in = static_cast<size_t>(cols) * isz;
    int64_t released_to = piece.row_begin;  // source rows whose pages were handed back
    for (int64_t row = piece.row_begin; row < piece.row_end; ++row) {
      if (fill + row_out > buf.size()) {
        flush();
        // Drop the source pages read so far: RSS stays at the staging buffer, not the tensor.
        // Another rank reading the same rows later takes minor faults from the page cache.
        t.file->mapping().release(t.begin + static_cast<size_t>(released_to) * row_in,
                                  static_cast<size_t>(row - released_to) * row_in);
        released_to = row;
      }
      if (row_out > buf.size()) buf.resize(row_out);
      const uint8_t* src = t.data + (static_cast<size_t>(row) * cols + piece.col_begin) * isz;
      if (quantize) {
        row_f32.resize(static_cast<size_t>(ncols));
        convert_dtype(src, in, row_f32.data(), DType::kF32, static_cast<size_t>(ncols));
        quantize_row(out, row_f32.data(), ncols, buf.data() + fill);
      } else {
        convert_dtype(src, in, buf.data() + fill, out, static_cast<size_t>(ncols));
      }
      fill += row_out;
    }
  }
  flush();
}

// Packing writes into a staging folder beside the output, ".<name>.packing-<pid>", which takes
// the output's place in one step at the end: rename() when there is no output folder yet,
// renameat2(RENAME_EXCHANGE) when there is one (the old pack set stays whole until that instant,
// however many ranks it has), and the old folder is removed after. A kill at any point leaves
// the old pack or the complete new one, never ranks of both. An output folder that holds
// anything but pack files (rank files, pack.json, temporary files) is never swapped: its pack
// files are replaced one by one, as on filesystems without RENAME_EXCHANGE.
void remove_stale_rank_files(const fs::path& dir, int tp);

bool is_pack_file(const std::string& name) {
  static const std::regex re(R"((rank-\d+-of-\d+\.shardlm(\.tmp-\d+)?)|pack\.json)");
  return std::regex_match(name, re);
}

bool only_pack_files(const fs::path& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (!e.is_regular_file() || !is_pack_file(e.path().filename().string())) return false;
  return true;
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// ".<name>.packing-<host>-": the host keeps a run on another machine sharing the folder (NFS)
// from taking this machine's process table as the judge of whether that run is alive.
std::string staging_prefix(const fs::path& out) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string h(host);
  for (char& c : h)
    if (c == '/' || c == '-') c = '_';
  return "." + out.filename().string() + ".packing-" + h + "-";
}

// Staging folders of this machine's earlier runs that were killed (their process is gone).
void remove_dead_staging(const fs::path& out) {
  const fs::path parent = out.parent_path();
  const std::string prefix = staging_prefix(out);
  std::error_code ec;
  for (auto& e : fs::directory_iterator(parent, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH)) fs::remove_all(e.path(), ec);
  }
}

// Moves the finished pack in `staging` to `out` (see above); removes `staging` in every case.
void publish(const fs::path& staging, const fs::path& out, int tp) {
  std::error_code ec;
  const bool nested = staging.parent_path() == out;
  if (!nested && !fs::exists(out)) {
    if (::rename(staging.c_str(), out.c_str()) != 0)
      fail(StatusCode::kIo, out.string() + ": cannot rename from " + staging.string() + ": " + std::strerror(errno));
    fsync_dir(out.parent_path());
    return;
  }
  if (!nested && !fs::is_symlink(out) && only_pack_files(out) && ::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, out.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_dir(out.parent_path());
    fs::remove_all(staging, ec);  // now the old pack
    return;
  }
  // One file at a time (rank files and pack.json), then rank files of another tp go.
  for (auto& e : fs::directory_iterator(staging)) {
    const fs::path to = out / e.path().filename();
    if (::rename(e.path().c_str(), to.c_str()) != 0)
      fail(StatusCode::kIo, to.string() + ": cannot rename from " + e.path().string() + ": " + std::strerror(errno));
  }
  fsync_dir(out);
  fs::remove_all(staging, ec);
  remove_stale_rank_files(out, tp);
}

void remove_stale_rank_files(const fs::path& dir, int tp) {
  static const std::regex re(R"(rank-(\d+)-of-(\d+)\.shardlm)");
  for (auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re) && (std::stoi(m[2]) != tp || std::stoi(m[1]) >= tp)) {
      std::error_code ec;
      fs::remove(e.path(), ec);
    }
  }
}

nlohmann::json summary_json(const ModelConfig& c, const PackOptions& o, DType wt, DType et, uint64_t pack_id,
                            const std::vector<std::string>& paths, const std::vector<MemoryPlan>& plans) {
  nlohmann::json ranks = nlohmann::json::array();
  for (size_t r = 0; r < paths.size(); ++r)
    ranks.push_back({{"file", fs::path(paths[r]).filename().string()},
                     {"bytes", fs::file_size(paths[r])},
                     {"weight_bytes", plans[r].weight_bytes},
                     {"kv_tokens", plans[r].kv_tokens},
                     {"fits", plans[r].fits}});
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(pack_id));
  return {{"packer", kPackerVersion},
          {"pack_id", id},
          {"source", fs::absolute(o.model_dir).string()},
          {"family", family_name(c.family)},
          {"architecture", c.architecture},
          {"tp", o.tp_size},
          {"weight_dtype", dtype_name(wt)},
          {"embedding_dtype", dtype_name(et)},
          {"n_layer", c.n_layer},
          {"n_embd", c.n_embd},
          {"n_head", c.n_head},
          {"n_head_kv", c.n_head_kv},
          {"head_dim", c.head_dim},
          {"n_ff", c.n_ff},
          {"n_vocab", c.n_vocab},
          {"ranks", ranks},
          {"note", "informational summary; the rank files are authoritative"}};
}

}  // namespace

PackResult pack_checkpoint(const PackOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  PackResult result;
  const ModelConfig config = load_hf_config(o.model_dir);
  if (o.tp_size < 1) fail(StatusCode::kInvalidArg, "--tp must be >= 1, got " + std::to_string(o.tp_size));
  std::vector<ParallelLayout> layouts;
  for (int r = 0; r < o.tp_size; ++r) layouts.push_back(make_parallel_layout(config, o.tp_size, r));

  Checkpoint ckpt(o.model_dir);
  const SafeTensor* embed = ckpt.find("model.embed_tokens.weight");
  if (embed == nullptr)
    fail(StatusCode::kFormat, o.model_dir + ": tensor 'model.embed_tokens.weight' is missing");
  if (!embed->dtype)
    fail(StatusCode::kFormat, embed->file->path() + ": tensor 'model.embed_tokens.weight' has dtype " +
                                  embed->dtype_name + "; shardlm-pack reads F32, F16 and BF16 weights");
  const DType float_dtype = o.dtype.value_or(*embed->dtype);
  if (o.quantize && !is_quantized(*o.quantize))
    fail(StatusCode::kInvalidArg, std::string("quantize: ") + dtype_name(*o.quantize) + " is not a quantized type");
  if (o.dtype && (is_quantized(*o.dtype) || *o.dtype == DType::kF8E4M3))
    fail(StatusCode::kInvalidArg, std::string("--dtype ") + dtype_name(*o.dtype) +
                                      ": takes bf16, f16 or f32; quantize with --weights");
  // A GPTQ checkpoint's matrices arrive quantized: they pack as int4 / int8 as they are.
  const std::optional<GptqScheme> gptq = read_gptq_scheme(o.model_dir);
  if (gptq && o.quantize && !gptq->packs_as(*o.quantize))
    fail(StatusCode::kInvalidArg,
         o.model_dir + " is a " + gptq->summary() + " checkpoint: its matrices pack as " +
             dtype_name(gptq->dtype()) +
             (gptq->bits == 4 && gptq->dtype() != DType::kInt4 ? " or int4" : "") +
             "; leave out --weights " + dtype_name(*o.quantize));
  const std::optional<DType> quantize =
      gptq ? std::optional<DType>(o.quantize.value_or(gptq->dtype())) : o.quantize;
  if (o.quantize_embeddings && !quantize)
    fail(StatusCode::kInvalidArg,
         "--quantize-embeddings needs --weights int8, int4 or int4g128 (or a GPTQ checkpoint)");
  DType wt = quantize.value_or(float_dtype);
  // A GPTQ checkpoint with groups of 128 packs as int4g128 by default, unless this TP size gives
  // some rank a slice of a row-parallel matrix that is not whole groups of 128: then as int4, which
  // holds it exactly too (each group's scale repeated per block of 32).
  if (gptq && !o.quantize && wt == DType::kInt4G128) {
    for (auto& p : layouts)
      for (const PackTensorSpec& spec : pack_tensor_specs(config, p, wt, float_dtype))
        if (is_quantized(spec.dtype) && spec.shape.size() == 2 &&
            spec.shape[1] % quant_scale_inputs(wt) != 0)
          wt = DType::kInt4;
  }
  const DType et = quantize && o.quantize_embeddings ? wt : float_dtype;

  std::vector<std::vector<TensorRecipe>> recipes;
  for (auto& p : layouts) {
    recipes.push_back(make_rank_recipes(config, p, wt, et));
    check_sources(config, ckpt, recipes.back(), gptq ? &*gptq : nullptr);
  }
  for (int r = 0; r < o.tp_size; ++r) {
    uint64_t weights = 0;
    for (auto& rec : recipes[r]) {
      const auto& s = rec.spec.shape;
      uint64_t n = dtype_size(rec.spec.dtype);
      for (int64_t d : s) n *= static_cast<uint64_t>(d);
      if (s.size() == 2) n = static_cast<uint64_t>(s[0]) * row_bytes(rec.spec.dtype, s[1]);
      weights += n;
    }
    result.plans.push_back(compute_memory_plan(config, layouts[r], weights, o.plan));
  }
  result.source_bytes = ckpt.total_bytes();
  if (o.plan_only) return result;

  // The output folder's parent, and a staging folder beside the output (publish()).
  std::error_code ec;
  fs::path out = fs::absolute(o.out_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  fs::create_directories(out.parent_path(), ec);
  if (fs::exists(out) && !fs::is_directory(out))
    fail(StatusCode::kIo, o.out_dir + ": cannot create the output directory: a file of that name exists");
  if (ec || !fs::is_directory(out.parent_path()))
    fail(StatusCode::kIo, o.out_dir + ": cannot create the output directory" +
                              (ec ? ": " + ec.message() : ": its parent is not a directory"));
  remove_dead_staging(out);
  fs::path staging = out.parent_path() / (staging_prefix(out) + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  if (!fs::create_directory(staging, ec) || ec) {
    // A parent we may not write to (an existing output folder in a read-only place): stage
    // inside the output instead; publish() then replaces the files one by one.
    std::error_code ec2;
    staging = out / (".packing-" + std::to_string(::getpid()));
    if (!fs::is_directory(out) || !fs::create_directory(staging, ec2) || ec2)
      fail(StatusCode::kIo, o.out_dir + ": cannot create the output directory (staging folder beside it: " +
                                ec.message() + ")");
  }
  struct StagingGuard {  // an error on the way removes the staging folder
    fs::path dir;
    bool published = false;
    ~StagingGuard() {
      std::error_code e;
      if (!published) fs::remove_all(dir, e);
    }
  } guard{staging};

  // Carried files.
  std::vector<PackBlob> blobs;
  std::vector<SourceFileInfo> sources;
  for (const char* name : kCarriedFiles) {
    const fs::path p = fs::path(o.model_dir) / name;
    if (!fs::exists(p)) continue;
    const std::string raw = slurp(p);
    blobs.push_back(make_blob(name, raw));
    sources.push_back({name, raw.size(), blobs.back().xxh3});
  }
  for (auto& f : ckpt.files())
    sources.push_back({fs::path(f->path()).filename().string(), f->mapping().size(), hash_mapping(f->mapping())});

  // pack_id: deterministic over sources and options, so identical runs give interchangeable ranks.
  std::string id_text = std::string(kPackerVersion) + "|tp=" + std::to_string(o.tp_size) +
                        "|dtype=" + dtype_name(wt) + "|embeddings=" + dtype_name(et) +
                        (gptq ? "|" + gptq->summary() : "");
  for (auto& s : sources) id_text += "|" + s.name + ":" + std::to_string(s.size) + ":" + std::to_string(s.xxh3);
  const uint64_t pack_id = XXH3_64bits(id_text.data(), id_text.size());

  std::vector<std::unique_ptr<PackWriter>> writers;
  std::vector<std::vector<size_t>> indices(o.tp_size);
  uint64_t total = 0;
  for (int r = 0; r < o.tp_size; ++r) {
    writers.push_back(std::make_unique<PackWriter>((staging / rank_file_name(r, o.tp_size)).string()));
    for (auto& rec : recipes[r]) indices[r].push_back(writers[r]->declare(rec.spec));
    total += writers[r]->data_bytes();
  }

  // Stream: each logical tensor to every rank, then drop its source pages.
  ProgressBar bar("packing", total, o.progress);
  std::vector<uint8_t> buf(kChunkBytes);
  const std::vector<TensorRecipe>& order = recipes[0];
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& name = order[i].spec.name;
    for (int r = 0; r < o.tp_size; ++r) {
      auto it = std::find_if(recipes[r].begin(), recipes[r].end(), [&](auto& x) { return x.spec.name == name; });
      if (it == recipes[r].end()) continue;  // rank-0-only tensors
      write_recipe(*it, ckpt, gptq ? &*gptq : nullptr, *writers[r],
                   indices[r][static_cast<size_t>(it - recipes[r].begin())], buf, bar, o.stop);
    }
    for (auto& piece : order[i].pieces)
      for (const SafeTensor* t : source_tensors(ckpt, piece.tensor))
        t->file->mapping().release(t->begin, t->nbytes());
  }
  bar.finish();

  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  for (int r = 0; r < o.tp_size; ++r) {
    PackManifestInfo info;
    info.config = config;
    info.parallel = layouts[r];
    info.plan = result.plans[r];
    info.weight_dtype = wt;
    info.embedding_dtype = et;
    info.pack_id = pack_id;
    info.created_unix = now;
    for (auto& b : blobs) info.files.push_back(&b);
    info.sources = sources;
    result.bytes_written += writers[r]->finish(info);
  }
  std::vector<std::string> staged;
  for (auto& w : writers) {
    w->commit();
    staged.push_back(w->final_path());
  }
  {
    std::ofstream summary(staging / "pack.json");
    nlohmann::json j = summary_json(config, o, wt, et, pack_id, staged, result.plans);
    if (gptq) j["weights_from"] = gptq->summary();
    summary << j.dump(2) << "\n";
    summary.close();
    if (!summary) fail(StatusCode::kIo, (staging / "pack.json").string() + ": cannot write");
  }
  fsync_dir(staging);
  publish(staging, out, o.tp_size);
  guard.published = true;
  for (int r = 0; r < o.tp_size; ++r) result.rank_paths.push_back((out / rank_file_name(r, o.tp_size)).string());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace shardlm
