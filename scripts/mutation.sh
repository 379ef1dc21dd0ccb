#!/usr/bin/env bash
# Mutation testing (mutmut) of the modules that compute, record, judge or report numbers. Slow; not in CI.
#
#   scripts/mutation.sh [GROUP ...]      groups: verdicts state stats lr_suggest report engine probes (default: all)
#
# Each group mutates its modules in a scratch copy of the tracked tree (/tmp/nntui-mutation/GROUP) and runs
# only the tests relevant to them; the score per group is printed at the end (scores: BENCHMARKS.md, Testing).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="${NNTUI_MUTATION_DIR:-/tmp/nntui-mutation}"
CHILDREN="${NNTUI_MUTATION_CHILDREN:-2}"

modules_of() {
  case "$1" in
    verdicts)   echo "nntui/verdicts/*.py" ;;
    state)      echo "nntui/record/state.py" ;;
    stats)      echo "nntui/engine/probes/stats.py" ;;
    lr_suggest) echo "nntui/engine/lr_suggest.py" ;;
    report)     echo "nntui/report.py" ;;
    engine)     echo "nntui/engine/evaluation.py nntui/engine/probes/numpy_ops.py nntui/engine/probes/torch_ops.py" ;;
    probes)     echo "nntui/engine/probes/probe.py nntui/engine/probes/capture.py" ;;
    *) echo "unknown group $1; choose verdicts state stats lr_suggest report engine probes" >&2; exit 2 ;;
  esac
}
tests_of() {
  case "$1" in
    verdicts)   echo "tests/test_verdicts.py tests/test_mutants_verdicts.py tests/test_mutants_schedules.py tests/test_mutants_health.py" ;;
    state)      echo "tests/test_mutants_state.py tests/test_mutants_state_events.py" ;;
    stats)      echo "tests/test_mutants_stats.py tests/test_probes.py tests/test_mutants_numbers.py" ;;
    lr_suggest) echo "tests/test_mutants_lr_suggest.py" ;;  # fast: test_lr_finder and test_mutants_numbers train (seconds per mutant)
    report)     echo "tests/test_mutants_numbers.py tests/test_mutants_report.py" ;;
    engine)     echo "tests/test_mutants_engine.py tests/test_mutants_stats.py" ;;
    probes)     echo "tests/test_mutants_probes.py" ;;
  esac
}

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(verdicts state stats lr_suggest report engine probes)
for group in "${groups[@]}"; do
  modules="$(modules_of "$group")"
  dir="$SCRATCH/$group"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$dir" 2>/dev/null || true)
  rm -f "$dir/pyproject.toml.mutmut"
  # pyproject.toml's [tool.mutmut] would win over setup.cfg: keep the project's file free of one
  {
    echo "[mutmut]"
    echo "source_paths = nntui"
    echo "only_mutate ="; for m in $modules; do echo "    $m"; done
    echo "pytest_add_cli_args_test_selection ="; for t in $(tests_of "$group"); do [ -f "$dir/$t" ] && echo "    $t"; done
    echo "process_isolation = forkserver"
  } > "$dir/setup.cfg"
  echo "== $group: $modules"
  (cd "$dir" && env -u PYTHONPATH mutmut run --max-children "$CHILDREN" >"$dir/run.log" 2>&1 || true)
  (cd "$dir" && env -u PYTHONPATH mutmut results --all true >"$dir/results.txt" 2>&1 || true)
  python - "$dir/results.txt" "$group" <<'PY'
import collections, sys
counts = collections.Counter(line.rsplit(":", 1)[1].strip() for line in open(sys.argv[1]) if ":" in line and "__mutmut_" in line)
total = sum(counts.values())
killed = counts.get("killed", 0) + counts.get("timeout", 0)
print(f"{sys.argv[2]}: {killed}/{total} killed ({killed / max(total, 1):.0%}); {dict(counts)}")
PY
done
