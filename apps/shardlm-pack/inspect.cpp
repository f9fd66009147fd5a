// Pack inspection for the CLI: text tables or JSON.
#include "inspect.h"

#include <cstdio>
#include <ostream>

#include <nlohmann/json.hpp>

#include "formats/pack_reader.h"

namespace shardlm {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

std::string hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

void inspect_pack(const std::string& dir, bool verify, bool as_json, std::ostream& out) {
  const PackSet set = find_pack_set(dir);
  nlohmann::json j_ranks = nlohmann::json::array();
  std::vector<MemoryPlan> plans;
  for (int r = 0; r < set.tp_size; ++r) {
    auto pack = PackReader::open(set.rank_paths[r]);
    if (verify) pack->verify_tensors();
    const ModelConfig& c = pack->config();
    const ParallelLayout& p = pack->parallel();
    plans.push_back(pack->plan());
    uint64_t weights = 0;
    for (auto& t : pack->tensors()) weights += t.nbytes;
    if (r == 0 && !as_json) {
      out << "pack       " << dir << "\n"
          << "pack id    " << hex(pack->pack_id()) << " (" << pack->packer_version() << ")\n"
          << "model      " << c.architecture << " (" << family_name(c.family) << "), " << c.n_layer << " layers, n_embd "
          << c.n_embd << ", n_ff " << c.n_ff << ", n_vocab " << c.n_vocab << "\n"
          << "attention  " << c.n_head << " heads, " << c.n_head_kv << " kv heads, head_dim " << c.head_dim
          << (c.attention_bias ? ", qkv bias" : "") << (c.o_proj_bias ? ", o bias" : "")
          << (c.qk_norm ? ", q/k norm" : "")
          << (c.sliding_window ? ", sliding window " + std::to_string(c.sliding_window) : "") << "\n"
          << "rope       theta " << c.rope_theta
          << (c.rope_scaling.type == RopeScalingType::kLlama3 ? ", llama3 scaling x" + std::to_string(c.rope_scaling.factor)
              : c.rope_scaling.type == RopeScalingType::kLinear ? ", linear scaling x" + std::to_string(c.rope_scaling.factor)
                                                                : std::string())
          << ", max positions " << c.max_position_embeddings << "\n"
          << "embeddings " << (c.tie_word_embeddings ? "tied" : "untied") << " " << dtype_name(pack->embedding_dtype())
          << ", weights " << dtype_name(pack->weight_dtype())
          << (is_quantized(pack->weight_dtype())
                  ? " (blocks of " + std::to_string(kQuantBlock) + " inputs, one f16 scale per " +
                        (quant_scale_blocks(pack->weight_dtype()) == 1
                             ? std::string("block")
                             : std::to_string(quant_scale_inputs(pack->weight_dtype())) + " inputs") +
                        "; rows: " +
                        (is_int4(pack->weight_dtype()) ? "4-bit values interleaved in groups of 16 blocks (layout Int4Groups16)"
                                                              : "8-bit values interleaved in groups of 16 blocks (layout Int8Groups16)") +
                        ", then scales)"
                  : std::string())
          << ", tp " << set.tp_size << "\n"
          << "files      ";
      for (auto& f : pack->file_names()) out << f << " ";
      out << "\n";
    }
    if (as_json) {
      nlohmann::json tensors = nlohmann::json::array();
      for (auto& t : pack->tensors())
        tensors.push_back({{"name", t.name}, {"dtype", dtype_name(t.dtype)}, {"shape", t.shape},
                           {"global_shape", t.global_shape}, {"split", split_kind_name(t.split)},
                           {"offset", t.offset}, {"nbytes", t.nbytes}, {"xxh3", hex(t.xxh3)}});
      j_ranks.push_back({{"rank", r}, {"file", set.rank_paths[r]}, {"pack_id", hex(pack->pack_id())},
                         {"family", family_name(c.family)}, {"architecture", c.architecture},
                         {"n_head_local", p.n_head_local}, {"n_head_kv_local", p.n_head_kv_local},
                         {"kv_head_start", p.kv_head_start}, {"n_ff_local", p.n_ff_local},
                         {"vocab_start", p.vocab_start}, {"n_vocab_local", p.n_vocab_local},
                         {"weight_dtype", dtype_name(pack->weight_dtype())},
                         {"embedding_dtype", dtype_name(pack->embedding_dtype())},
                         {"quant_block", is_quantized(pack->weight_dtype()) ? kQuantBlock : 0},
                         {"quant_scale_inputs",
                          is_quantized(pack->weight_dtype()) ? quant_scale_inputs(pack->weight_dtype()) : 0},
                         {"weight_bytes", weights}, {"tensors", tensors}, {"files", pack->file_names()},
                         {"verified", verify}});
      continue;
    }
    out << "\nrank " << r << " of " << set.tp_size << ": " << set.rank_paths[r] << "\n"
        << "  heads " << p.head_start << ".." << p.head_start + p.n_head_local - 1 << ", kv heads " << p.kv_head_start
        << ".." << p.kv_head_start + p.n_head_kv_local - 1 << ", ff " << p.ff_start << ".."
        << p.ff_start + p.n_ff_local - 1 << ", vocab " << p.vocab_start << ".." << p.vocab_start + p.n_vocab_local - 1
        << "\n";
    char line[256];
    std::snprintf(line, sizeof line, "  %-22s %-5s %-22s %-22s %-10s %12s\n", "tensor", "dtype", "shape", "global",
                  "split", "bytes");
    out << line;
    for (auto& t : pack->tensors()) {
      std::snprintf(line, sizeof line, "  %-22s %-5s %-22s %-22s %-10s %12s\n", t.name.c_str(), dtype_name(t.dtype),
                    shape_str(t.shape).c_str(), shape_str(t.global_shape).c_str(), split_kind_name(t.split),
                    format_bytes(t.nbytes).c_str());
      out << line;
    }
    out << "  " << pack->tensors().size() << " tensors, " << format_bytes(weights) << (verify ? ", all checksums OK" : "")
        << "\n";
  }
  if (as_json) {
    out << nlohmann::json{{"dir", dir}, {"tp", set.tp_size}, {"ranks", j_ranks},
                          {"plan", nlohmann::json::parse(plan_to_json(plans))}}.dump(2)
        << "\n";
  } else {
    out << "\n" << format_plan_table(plans);
    if (verify) out << "verify: every tensor of every rank matches its checksum\n";
  }
}

}  // namespace shardlm
