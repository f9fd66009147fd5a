#!/usr/bin/env bash
# The installed package, as a user gets it: `cmake --install` (component shardlm) into a fresh
# prefix must give the header, libshardlm.so.1 (SONAME, only shardlm_* exported), the CMake
# package and shardlm.pc; the C example must build against it with find_package(shardlm) and
# with pkg-config, and run on the fixture pack; the installed shardlm-chat must start.
#   usage: install_test.sh BUILD_DIR SOURCE_DIR FIXTURE_DIR WORK_DIR
set -euo pipefail
build=$1 src=$2 fixture=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
fail() { echo "install_test: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" --component shardlm > "$work/install.log"
[ -f "$prefix/include/shardlm.h" ] || fail "no include/shardlm.h"
lib=$(find "$prefix" -name 'libshardlm.so.1' | head -n1)
[ -n "$lib" ] || fail "no libshardlm.so.1 under $prefix"
libdir=$(dirname "$lib")
[ -L "$libdir/libshardlm.so" ] || fail "no libshardlm.so development link"
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libshardlm.so.1" ] || fail "SONAME is '$soname'"
extra=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^shardlm_' | grep -v '^SHARDLM_1$' || true)
[ -z "$extra" ] || fail "exports more than shardlm_*: $(echo "$extra" | head -n5)"
[ -f "$libdir/cmake/shardlm/shardlmConfig.cmake" ] || fail "no CMake package"
[ -f "$libdir/pkgconfig/shardlm.pc" ] || fail "no pkg-config file"

# find_package(shardlm)
cmake -S "$src/apps/examples/c" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" || { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work/cmake-build" > "$work/build.log" || { cat "$work/build.log"; fail "build"; }
"$work/cmake-build/chat_example" "$fixture/tp2" "Hello there" "And again?" > "$work/out-cmake.txt"
grep -q "qwen3 (Qwen3ForCausalLM), tp 2" "$work/out-cmake.txt" || fail "find_package example output"
[ "$(grep -c 'reused from the KV cache' "$work/out-cmake.txt")" = 2 ] || fail "two turns expected"
grep -q "prompt [0-9]* tokens, 0 reused" "$work/out-cmake.txt" || fail "turn 1 reuses nothing"
grep "reused from the KV cache" "$work/out-cmake.txt" | tail -n1 | grep -vq " 0 reused" ||
  fail "turn 2 must reuse the KV cache"

# pkg-config, strict C99
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[ "$(pkg-config --modversion shardlm)" != "" ] || fail "pkg-config --modversion"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -pedantic -Werror "$src/apps/examples/c/chat_example.c" \
  $(pkg-config --cflags --libs shardlm) -o "$work/chat_example_pc"
LD_LIBRARY_PATH="$libdir" "$work/chat_example_pc" "$fixture/tp1" "Hi" > "$work/out-pc.txt"
grep -q "tp 1" "$work/out-pc.txt" || fail "pkg-config example output"

# The installed REPL finds its library through its RPATH.
"$prefix/bin/shardlm-chat" --help | grep -q "usage: shardlm-chat" || fail "installed shardlm-chat"
echo "install_test: ok ($prefix)"
cat "$work/out-cmake.txt"
