// Many streaming requests from one thread: non-blocking sockets and epoll, a minimal HTTP/1.1
// client (one request per connection, `Connection: close`; chunked, Content-Length or
// read-to-close bodies) feeding the same SSE splitter and StreamState as the cpp-httplib client.
// This is shardlm-serve-bench's default: a load generator on the machine it measures should cost
// that machine as little as it can, and a thread per stream costs a context switch per token
// (about 26 us of CPU per token on a 2-core VM, docs/server.md). Like asyncio-based peers
// (vLLM's benchmark_serving), it reads every ready connection in one wake-up. Not TLS, not
// keep-alive, not redirects; not the report (report.h).
#pragma once

#include <vector>

#include "apps/shardlm-serve-bench/stream_client.h"

namespace shardlm::serve_bench {

// Runs `requests` with at most `concurrency` open at once, starting the next as one ends;
// results[i] is requests[i]'s. Never throws for what the server or the network does: failures
// come back in StreamResult::error (kinds as run_stream_request's: "connection", "read",
// "http N", "timeout", "incomplete stream", ...).
std::vector<StreamResult> run_streams_event_loop(const ServerConfig& server,
                                                 const std::vector<StreamRequest>& requests,
                                                 int concurrency);

}  // namespace shardlm::serve_bench
