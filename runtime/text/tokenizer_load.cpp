// Tokenizer construction (see tokenizer.h): tokenizer.json, vocab.json + merges.txt, and the
// tokenizer_config.json overlay that transformers applies (added_tokens_decoder flags, named
// special tokens, add_bos_token/add_eos_token for Llama-family classes).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/core/status.h"
#include "runtime/text/tokenizer.h"
#include "runtime/text/token_bound.h"
#include "runtime/text/tokenizer_impl.h"

namespace shardlm::text {

void TokenizerImpl::index_added() {
  added_by_id.clear();
  added_by_content.clear();
  std::vector<const AddedToken*> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken& a = added[i];
    added_by_id[a.id] = i;
    added_by_content[a.content] = a.id;
    if (a.normalized && normalizer) {
      std::string pat = a.content;
      normalizer->normalize(pat);
      norm.push_back(&a);
      norm_pat.push_back(pat);
    } else if (a.normalized) {
      norm.push_back(&a);
      norm_pat.push_back(a.content);
    } else {
      raw.push_back(&a);
      raw_pat.push_back(a.content);
    }
  }
  raw_matcher = TokenMatcher();
  normalized_matcher = TokenMatcher();
  raw_matcher.build(raw, raw_pat);
  normalized_matcher.build(norm, norm_pat);
}

namespace {

AddedToken read_added(const Json& j, const std::string& path, int32_t id) {
  AddedToken a;
  a.id = id;
  a.content = need_string(j, "content", path);
  a.special = opt_bool(j, "special", path, false);
  a.normalized = opt_bool(j, "normalized", path, !a.special);
  a.lstrip = opt_bool(j, "lstrip", path, false);
  a.rstrip = opt_bool(j, "rstrip", path, false);
  a.single_word = opt_bool(j, "single_word", path, false);
  return a;
}

// "bos_token": "<s>" | {"content": "<s>", ...} | null
std::string token_name(const Json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object())
    return opt_string(*it, "content", std::string("tokenizer_config.json: ") + key);
  bad_field(std::string("tokenizer_config.json: ") + key, "expected a string or an object");
}

bool is_llama_family(const std::string& cls) {
  for (const char* p :
       {"LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer", "CohereTokenizer"})
    if (cls.rfind(p, 0) == 0) return true;
  return false;
}

void detect_byte_level_decoder(const Json& dec, bool& out) {
  if (!dec.is_object()) return;
  if (dec.contains("type") && dec["type"].is_string() && dec["type"].get<std::string>() == "ByteLevel") out = true;
  if (dec.contains("decoders") && dec["decoders"].is_array())
    for (const Json& d : dec["decoders"]) detect_byte_level_decoder(d, out);
}

void apply_config(TokenizerImpl& t, const std::string& config_json, bool override_flags) {
  if (config_json.empty()) return;
  const Json cfg = parse_json(config_json, "tokenizer_config.json");
  if (!cfg.is_object()) bad_field("tokenizer_config.json", "expected an object");
  const std::string doc = "tokenizer_config.json";
  auto dec = cfg.find("added_tokens_decoder");
  if (dec != cfg.end() && !dec->is_null()) {
    if (!dec->is_object()) bad_field(doc + ": added_tokens_decoder", "expected an object");
    for (auto it = dec->begin(); it != dec->end(); ++it) {
      const std::string path = doc + ": added_tokens_decoder[\"" + it.key() + "\"]";
      int32_t id;
      try {
        size_t used = 0;
        id = std::stoi(it.key(), &used);
        if (used != it.key().size() || id < 0 || id == INT32_MAX) throw std::invalid_argument("id");
      } catch (const std::exception&) {
        bad_field(path, "key is not a token id");
      }
      AddedToken a = read_added(it.value(), path, id);
      auto found = std::find_if(t.added.begin(), t.added.end(),
                                [&](const AddedToken& x) { return x.id == id; });
      if (found != t.added.end()) {
        if (override_flags) *found = a;
      } else {
        t.added.push_back(a);
      }
    }
  }
  t.index_added();
  t.clean_up_spaces = opt_bool(cfg, "clean_up_tokenization_spaces", doc, false);
  auto id_of = [&](const char* key, std::string* name_out) {
    const std::string name = token_name(cfg, key);
    if (name_out) *name_out = name;
    if (name.empty()) return -1;
    auto a = t.added_by_content.find(name);
    if (a != t.added_by_content.end()) return a->second;
    return t.model->token_to_id(name);
  };
  t.bos = id_of("bos_token", &t.bos_token);
  t.eos = id_of("eos_token", &t.eos_token);
  t.pad = id_of("pad_token", nullptr);
  t.unk = id_of("unk_token", nullptr);
  const std::string cls = opt_string(cfg, "tokenizer_class", doc);
  if (is_llama_family(cls)) {
    const bool add_bos = opt_bool(cfg, "add_bos_token", doc, true);
    const bool add_eos = opt_bool(cfg, "add_eos_token", doc, false);
    if (add_bos && t.bos < 0) bad_field(doc + ": add_bos_token", "true but bos_token is unknown");
    if (add_eos && t.eos < 0) bad_field(doc + ": add_eos_token", "true but eos_token is unknown");
    t.post = PostProcessor::bos_eos(add_bos ? t.bos : -1, add_eos ? t.eos : -1);
  }
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) fail(StatusCode::kIo, "cannot open " + p.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  if (!f.good() && !f.eof()) fail(StatusCode::kIo, "cannot read " + p.string());
  return ss.str();
}

}  // namespace

Tokenizer Tokenizer::from_json(const std::string& tokenizer_json,
                               const std::string& tokenizer_config_json,
                               const TokenizerOptions& options) {
  const std::string doc = "tokenizer.json";
  const Json j = parse_json(tokenizer_json, doc);
  if (!j.is_object()) bad_field(doc, "expected an object");
  auto t = std::make_shared<TokenizerImpl>();
  t->model = std::make_unique<BpeModel>(need(j, "model", doc), doc + ": model");
  auto field = [&](const char* key) -> const Json& {
    static const Json kNull;
    auto it = j.find(key);
    return it == j.end() ? kNull : *it;
  };
  t->normalizer = make_normalizer(field("normalizer"), doc + ": normalizer");
  t->pre_tokenizer = make_pre_tokenizer(field("pre_tokenizer"), doc + ": pre_tokenizer");
  t->decoder = make_decoder(field("decoder"), doc + ": decoder");
  detect_byte_level_decoder(field("decoder"), t->byte_level_decoder);
  t->post = PostProcessor::from_json(field("post_processor"), doc + ": post_processor");
  const Json& added = field("added_tokens");
  if (!added.is_null()) {
    if (!added.is_array()) bad_field(doc + ": added_tokens", "expected an array");
    for (size_t i = 0; i < added.size(); ++i) {
      const std::string path = doc + ": added_tokens[" + std::to_string(i) + "]";
      const int64_t id = opt_int(added[i], "id", path, -1);
      if (id < 0 || id >= INT32_MAX) bad_field(path + ".id", "missing or not a valid id");
      t->added.push_back(read_added(added[i], path, static_cast<int32_t>(id)));
    }
  }
  t->index_added();
  if (!t->post.prefix().empty()) t->bos = t->post.prefix().front();
  apply_config(*t, tokenizer_config_json, options.config_overrides_added_tokens);
  t->max_input_bytes_per_token =
      max_input_bytes_per_token(field("normalizer"), field("pre_tokenizer"), t->model->longest_token_bytes(),
                                t->model->fuses_unknown() || t->model->may_drop_unknown(has_byte_level(field("pre_tokenizer"))),
                                t->added);
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                       const std::string& tokenizer_config_json) {
  const Json vocab = parse_json(vocab_json, "vocab.json");
  std::string cls;
  bool add_prefix_space = false;
  if (!tokenizer_config_json.empty()) {
    const Json cfg = parse_json(tokenizer_config_json, "tokenizer_config.json");
    if (!cfg.is_object()) bad_field("tokenizer_config.json", "expected an object");
    cls = opt_string(cfg, "tokenizer_class", "tokenizer_config.json");
    add_prefix_space = opt_bool(cfg, "add_prefix_space", "tokenizer_config.json", false);
  }
  auto t = std::make_shared<TokenizerImpl>();
  t->model = std::make_unique<BpeModel>(vocab, merges_txt, "vocab.json/merges.txt");
  Json pre, normalizer;
  if (cls.rfind("Qwen2Tokenizer", 0) == 0) {
    normalizer = Json{{"type", "NFC"}};
    t->normalizer = make_normalizer(normalizer, "normalizer");
    pre = Json{
        {"type", "Sequence"},
        {"pretokenizers",
         Json::array(
             {Json{{"type", "Split"},
                   {"pattern", Json{{"Regex", kQwen2Pattern}}},
                   {"behavior", "Isolated"},
                   {"invert", false}},
              Json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  } else {
    pre = Json{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"use_regex", true}};
  }
  t->pre_tokenizer = make_pre_tokenizer(pre, "pre_tokenizer");
  t->decoder = make_decoder(Json{{"type", "ByteLevel"}}, "decoder");
  t->byte_level_decoder = true;
  t->index_added();
  apply_config(*t, tokenizer_config_json, false);
  t->max_input_bytes_per_token = max_input_bytes_per_token(normalizer, pre, t->model->longest_token_bytes(),
                                                           t->model->fuses_unknown() || t->model->may_drop_unknown(has_byte_level(pre)),
                                                           t->added);
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_files(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  std::string config;
  if (fs::exists(d / "tokenizer_config.json")) config = read_file(d / "tokenizer_config.json");
  if (fs::exists(d / "tokenizer.json")) return from_json(read_file(d / "tokenizer.json"), config);
  if (fs::exists(d / "vocab.json") && fs::exists(d / "merges.txt")) {
    return from_vocab_merges(read_file(d / "vocab.json"), read_file(d / "merges.txt"), config);
  }
  fail(StatusCode::kIo, dir + ": no tokenizer.json (or vocab.json + merges.txt)");
}

}  // namespace shardlm::text
