#!/usr/bin/env bash
# Two builds of flowtap on one capture, in the same run, alternating so both see the same machine:
# median wall-clock and CPU seconds (user + system) of `abstract` to files with 1 and 2 threads,
# `analyze` and `streams`. For checking that a change left performance within noise.
#
#   scripts/compare-builds.sh OLD_FLOWTAP NEW_FLOWTAP CAPTURE [RUNS] [CONFIG]
#
# Both binaries must accept `abstract --out-dir` (kept as an alias of -o for this).
set -euo pipefail
old=$1 new=$2 capture=$3 runs=${4:-7}
config=${5:-$(dirname "$0")/../examples/flowtap.yaml}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

measure() { # label binary args… → appends "wall cpu" to $scratch/label
    local label=$1; shift
    local out=$scratch/out
    rm -rf "$out"
    /usr/bin/time -f "%e %U %S" -o "$scratch/t" "$@" >/dev/null 2>"$scratch/err" || { cat "$scratch/err" >&2; exit 1; }
    awk '{printf "%s %.3f\n", $1, $2 + $3}' "$scratch/t" >> "$scratch/$label"
}

for _ in $(seq "$runs"); do
    for which in old new; do
        bin=${!which}
        measure "$which-abstract1" "$bin" abstract -c "$config" -r "$capture" --out-dir "$scratch/out" --threads 1 --quiet
        measure "$which-abstract2" "$bin" abstract -c "$config" -r "$capture" --out-dir "$scratch/out" --threads 2 --quiet
        measure "$which-analyze" "$bin" analyze -r "$capture" --quiet
        measure "$which-streams" "$bin" streams -r "$capture" --quiet
    done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf "%-12s %12s %12s %12s %12s %8s\n" job "old wall s" "new wall s" "old CPU s" "new CPU s" "CPU new/old"
for job in abstract1 abstract2 analyze streams; do
    ow=$(cut -d' ' -f1 "$scratch/old-$job" | median); nw=$(cut -d' ' -f1 "$scratch/new-$job" | median)
    oc=$(cut -d' ' -f2 "$scratch/old-$job" | median); nc=$(cut -d' ' -f2 "$scratch/new-$job" | median)
    printf "%-12s %12s %12s %12s %12s %8s\n" "$job" "$ow" "$nw" "$oc" "$nc" "$(awk -v a="$nc" -v b="$oc" 'BEGIN { printf "%.3f", a / b }')"
done
echo "($runs runs each, alternating old and new; medians)"
