// Post-processor (see post_processor.h): everything a single-sequence template can do reduces
// to ids before and ids after the sequence.
#include "runtime/text/post_processor.h"

namespace shardlm::text {

namespace {
void read_single(const Json& j, const std::string& path, std::vector<int32_t>& pre,
                 std::vector<int32_t>& post) {
  const std::string type = need_string(j, "type", path);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    const Json& items = need(j, "processors", path);
    if (!items.is_array()) bad_field(path + ".processors", "expected an array");
    for (size_t i = 0; i < items.size(); ++i)
      read_single(items[i], path + ".processors[" + std::to_string(i) + "]", pre, post);
    return;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto id_of = [&](const char* key) {
      const Json& v = need(j, key, path);
      if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer())
        bad_field(path + "." + key, "expected [token, id]");
      return v[1].get<int32_t>();
    };
    pre.insert(pre.begin(), id_of("cls"));
    post.push_back(id_of("sep"));
    return;
  }
  if (type == "TemplateProcessing") {
    const Json& single = need(j, "single", path);
    const Json& specials = need(j, "special_tokens", path);
    if (!single.is_array()) bad_field(path + ".single", "expected an array");
    bool seen_seq = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string where = path + ".single[" + std::to_string(i) + "]";
      const Json& item = single[i];
      if (item.contains("Sequence")) {
        seen_seq = true;
        continue;
      }
      if (!item.contains("SpecialToken")) bad_field(where, "expected Sequence or SpecialToken");
      const std::string name = need_string(item["SpecialToken"], "id", where + ".SpecialToken");
      if (!specials.is_object() || !specials.contains(name))
        bad_field(path + ".special_tokens", "no entry for '" + name + "'");
      const Json& ids = need(specials[name], "ids", path + ".special_tokens." + name);
      if (!ids.is_array()) bad_field(path + ".special_tokens." + name + ".ids", "expected array");
      for (const Json& id : ids) {
        if (!id.is_number_integer())
          bad_field(path + ".special_tokens." + name + ".ids", "expected integers");
        (seen_seq ? post : pre).push_back(id.get<int32_t>());
      }
    }
    return;
  }
  fail(StatusCode::kUnsupported, path + ": post-processor type '" + type + "' is not supported");
}
}  // namespace

PostProcessor PostProcessor::from_json(const Json& j, const std::string& path) {
  PostProcessor p;
  if (!j.is_null()) read_single(j, path, p.prefix_, p.suffix_);
  return p;
}

PostProcessor PostProcessor::bos_eos(int32_t bos, int32_t eos) {
  PostProcessor p;
  if (bos >= 0) p.prefix_.push_back(bos);
  if (eos >= 0) p.suffix_.push_back(eos);
  return p;
}

std::vector<int32_t> PostProcessor::apply(const std::vector<int32_t>& ids) const {
  if (prefix_.empty() && suffix_.empty()) return ids;
  std::vector<int32_t> out;
  out.reserve(ids.size() + prefix_.size() + suffix_.size());
  out.insert(out.end(), prefix_.begin(), prefix_.end());
  out.insert(out.end(), ids.begin(), ids.end());
  out.insert(out.end(), suffix_.begin(), suffix_.end());
  return out;
}

}  // namespace shardlm::text
