# Sourced by tools/fuzz.sh and tools/sanitize.sh: each_parallel N DIR FUNC ITEM... runs
# `FUNC ITEM` for every item, N at a time, each one's stdout in DIR/ITEM.out and stderr in
# DIR/ITEM.err; once all are done prints them in the items' order (stdout, then stderr to
# stderr). Returns 1 when any FUNC failed. Not a job scheduler: a fixed list, a fixed width.
each_parallel() {
  local n=$1 dir=$2 func=$3 item running=0 failed=0
  shift 3
  mkdir -p "$dir"
  for item in "$@"; do
    if [ "$running" -ge "$n" ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
    "$func" "$item" >"$dir/$item.out" 2>"$dir/$item.err" &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
  done
  for item in "$@"; do
    cat "$dir/$item.out"
    cat "$dir/$item.err" >&2
  done
  return $failed
}
