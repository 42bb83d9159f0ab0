#!/bin/sh
# Runs each libFuzzer harness for FUZZ_SECONDS (`make fuzz`, .ci/run).
#
#   run-fuzzers.sh BUILD_DIR SOURCE_DIR NAME...
#
# Harness NAME is BUILD_DIR/fuzz-NAME; it starts from the seeds in
# SOURCE_DIR/corpus/NAME (never written to) and its dictionary
# SOURCE_DIR/dict/NAME.dict if there is one. What it finds goes to
# BUILD_DIR/runs/NAME/: corpus/ (new inputs), artifacts/ (the input of a
# crash, leak or timeout) and log. A harness fails on any of those; the
# script then exits 1, after running the others. For each harness it
# prints one line:
#   fuzz NAME: PASS|FAIL  EXECS execs (EXEC_S exec/s) cov: N ft: N
set -u
build=$1
source=$2
shift 2
seconds=${FUZZ_SECONDS:-60}
status=0

# The last status line libFuzzer printed ("#123 DONE cov: ... exec/s: ..."),
# or failing that its last pulse or new-coverage line.
last_stats () {
  grep -a -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$1" | tail -n 1
}

field () {
  sed -n "s|.*[[:space:]]$1:[[:space:]]*\([0-9]*\).*|\1|p"
}

# Runs harness $1 and prints its line; returns 1 when it failed.
run_harness () {
  name=$1
  run=$build/runs/$name
  rm -rf "$run/artifacts"
  mkdir -p "$run/corpus" "$run/artifacts"
  set -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$run/artifacts/"
  [ -f "$source/dict/$name.dict" ] && set -- "$@" -dict="$source/dict/$name.dict"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$build/fuzz-$name" "$@" "$run/corpus" "$source/corpus/$name" >"$run/log" 2>&1
  result=$?
  stats=$(last_stats "$run/log")
  execs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$run/log" | tail -n 1)
  [ -n "$execs" ] || execs=$(echo "$stats" | sed -n 's/^#\([0-9]*\).*/\1/p')
  rate=$(echo "$stats" | field 'exec/s')
  cov=$(echo "$stats" | field cov)
  ft=$(echo "$stats" | field ft)
  verdict=PASS
  if [ $result -ne 0 ] || [ -n "$(ls -A "$run/artifacts")" ]; then
    verdict=FAIL
  fi
  echo "fuzz $name: $verdict  ${execs:-0} execs (${rate:-0} exec/s) cov: ${cov:-0} ft: ${ft:-0}"
  [ $verdict = PASS ] && return 0
  echo "  log: $run/log; artifacts in $run/artifacts/:"
  ls "$run/artifacts" | sed 's/^/    /'
  grep -a -E 'ERROR|SUMMARY|fuzz:|runtime error|CRITICAL|WARNING' "$run/log" | head -n 20 | sed 's/^/  | /'
  return 1
}

for name in "$@"; do
  run_harness "$name" || status=1
done
exit $status
