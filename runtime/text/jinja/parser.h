// Parser for the Jinja subset chat templates use: {{ expr }}, {% if/elif/else %},
// {% for ... in ... [if ...] %}/{% else %}, {% set %} (incl. namespace attributes, tuples and
// block form), {% macro %}, {% call %}, {% filter %}, {% break/continue %}, {% do %},
// {% generation %} (HF's assistant-mask marker, rendered as its body), and the Jinja
// expression grammar with filters and tests. {% extends/include/import %} are refused (no file
// system). Errors: Error(kFormat, "chat template line N: ...").
#pragma once

#include <string>
#include <vector>

#include "runtime/text/jinja/ast.h"

namespace shardlm::text::jinja {

// Parses template source into its top-level statement list.
std::vector<NodePtr> parse_template(const std::string& source);

}  // namespace shardlm::text::jinja
