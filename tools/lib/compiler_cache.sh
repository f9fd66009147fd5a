# Sourced by tools/test.sh and tools/sanitize.sh: sets `compiler_cache` to the CMake arguments
# that put ccache in front of the C, C++ and CUDA compilers, or that take it away (a build folder
# configured with it before) when ccache is not installed, its cache folder is not writable, or
# SHARDLM_CCACHE=0. CI builds a fresh clone each time, in a new folder: CCACHE_BASEDIR makes the
# cache key use paths relative to the clone, so one clone reuses the objects an earlier clone of
# the same sources compiled (a define that holds an absolute path, such as a test's data folder,
# still differs, and those files recompile).
# Not a build-system setting: a plain `cmake -B build` never uses ccache.
compiler_cache=(-DCMAKE_C_COMPILER_LAUNCHER= -DCMAKE_CXX_COMPILER_LAUNCHER=
  -DCMAKE_CUDA_COMPILER_LAUNCHER=)
if [ "${SHARDLM_CCACHE:-1}" != 0 ] && command -v ccache >/dev/null 2>&1; then
  cache_dir=$(ccache -k cache_dir 2>/dev/null || true)
  if [ -n "$cache_dir" ] && mkdir -p "$cache_dir" 2>/dev/null && [ -w "$cache_dir" ]; then
    export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
    compiler_cache=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
      -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  fi
fi
