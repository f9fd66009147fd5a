// Parses a Hugging Face config.json (and generation_config.json for EOS ids) into a
// ModelConfig. Knows the four families shardlm runs and each config class's defaults
// (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config). Errors name the file and field.
#pragma once

#include <string>

#include "formats/model_config.h"

namespace shardlm {

// `config_json` is the text of config.json; `where` names it in messages.
ModelConfig parse_hf_config(const std::string& config_json, const std::string& where);

// Reads <dir>/config.json (required) and merges EOS ids from <dir>/generation_config.json
// when present. Throws Error(kIo) when config.json is missing.
ModelConfig load_hf_config(const std::string& dir);

}  // namespace shardlm
