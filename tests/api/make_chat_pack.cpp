// Test fixture for tests/api: writes a tiny random Qwen3 checkpoint whose vocabulary covers the
// real Qwen3 tokenizer (n_vocab 151936, n_embd 16: small and fast), with the real Qwen3
// tokenizer.json / tokenizer_config.json (chat template with enable_thinking) copied from the
// shared test data and a Qwen3-style generation_config.json, then packs it at tp 1 and tp 2.
// Also writes a corrupted copy of the tp 1 pack and a tiny ids-only pack (no tokenizer).
//   usage: make_chat_pack OUT_DIR TOKENIZER_DIR
// Output: OUT_DIR/{tp1,tp2,bad,ids}/rank-*.shardlm. Not a test itself (a CTest fixture step).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "packer/packer.h"
#include "runtime/core/status.h"
#include "tiny_checkpoint.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  return json::parse(f);
}

void write_json(const fs::path& p, const json& j) {
  std::ofstream(p) << j.dump(2);
}

void pack(const fs::path& model, const fs::path& out, int tp) {
  shardlm::PackOptions o;
  o.model_dir = model.string();
  o.out_dir = out.string();
  o.tp_size = tp;
  shardlm::pack_checkpoint(o);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_chat_pack OUT_DIR TOKENIZER_DIR\n");
    return 2;
  }
  try {
    const fs::path out = argv[1], tok = argv[2];
    fs::remove_all(out);
    fs::create_directories(out);

    shardlm::testing::TinySpec s;
    s.architecture = "Qwen3ForCausalLM";
    s.model_type = "qwen3";
    s.n_vocab = 151936;
    s.n_embd = 16;
    s.n_ff = 32;
    s.n_layer = 2;
    s.n_head = 2;
    s.n_head_kv = 1;
    s.head_dim = 8;
    s.tied = true;
    s.dtype = "BF16";
    s.seed = 5;
    const fs::path ckpt = out / "qwen3-tiny";
    shardlm::testing::write_tiny_checkpoint(ckpt.string(), s);
    json cfg = read_json(ckpt / "config.json");
    cfg["bos_token_id"] = 151643;
    cfg["eos_token_id"] = 151645;
    write_json(ckpt / "config.json", cfg);
    write_json(ckpt / "generation_config.json", {{"bos_token_id", 151643},
                                                 {"do_sample", true},
                                                 {"eos_token_id", {151645, 151643}},
                                                 {"temperature", 0.6},
                                                 {"top_k", 20},
                                                 {"top_p", 0.95}});
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      fs::copy_file(tok / f, ckpt / f, fs::copy_options::overwrite_existing);
    }
    pack(ckpt, out / "tp1", 1);
    pack(ckpt, out / "tp2", 2);

    // A corrupted pack: one flipped byte inside the manifest (the header says where it is).
    fs::create_directories(out / "bad");
    const fs::path bad = out / "bad" / "rank-0-of-1.shardlm";
    fs::copy_file(out / "tp1" / "rank-0-of-1.shardlm", bad);
    {
      std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
      uint64_t manifest_offset = 0;
      f.seekg(40);
      f.read(reinterpret_cast<char*>(&manifest_offset), sizeof manifest_offset);
      f.seekg(static_cast<std::streamoff>(manifest_offset + 64));
      char c = 0;
      f.read(&c, 1);
      c = static_cast<char>(c ^ 0x5a);
      f.seekp(static_cast<std::streamoff>(manifest_offset + 64));
      f.write(&c, 1);
    }

    // Ids only: a tiny Llama without tokenizer files.
    shardlm::testing::TinySpec l;
    l.seed = 7;
    const fs::path ids_ckpt = out / "llama-ids";
    shardlm::testing::write_tiny_checkpoint(ids_ckpt.string(), l);
    fs::remove(ids_ckpt / "tokenizer_config.json");
    pack(ids_ckpt, out / "ids", 1);
    std::printf("make_chat_pack: wrote %s/{tp1,tp2,bad,ids}\n", out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_chat_pack: %s\n", e.what());
    return 1;
  }
}
