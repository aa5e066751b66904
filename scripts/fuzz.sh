#!/usr/bin/env bash
# libFuzzer over every parser FlowTap runs on untrusted bytes (Sources/flowtap-fuzz/FuzzTargets.swift).
#
#   scripts/fuzz.sh                 # every target for 6 seconds each (what CI runs)
#   scripts/fuzz.sh 600             # every target for 600 seconds
#   scripts/fuzz.sh 60 http dns     # some targets
#
# Builds flowtap-fuzz with -sanitize=fuzzer,address in .build-fuzz (release), seeds each target from
# ../shared/corpus (captures, SF-TAP configs) and from Tests/Fuzz/<target>/, and prints one line per
# target: executions, coverage, findings. A finding (a trap, a leak, a sanitizer report) is written to
# .build-fuzz/findings/<target>/ and fails the run; copy it to Tests/Fuzz/<target>/ once fixed, and
# the test suite replays it (FuzzRegressionTests).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-6}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(decoder capture gzip engine flows collect http dns tls quic event-reader loopback7 config forward incubate report telemetry rules-cache shard)
fi
corpus=${FLOWTAP_CORPUS:-../shared/corpus}

swift build -c release --product flowtap-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING >/dev/null
bin=$(swift build -c release --scratch-path .build-fuzz --show-bin-path 2>/dev/null | tail -n 1)/flowtap-fuzz

work=.build-fuzz/work
rm -rf "$work"
mkdir -p "$work" .build-fuzz/findings
failed=0
for target in "${targets[@]}"; do
    seeds="$work/$target-seeds"
    mkdir -p "$seeds" "$work/$target-corpus" ".build-fuzz/findings/$target"
    # Seeds: saved inputs, then what the corpus holds of this target's kind (small files only).
    if [ -d "Tests/Fuzz/$target" ]; then cp Tests/Fuzz/"$target"/* "$seeds"/ 2>/dev/null || true; fi
    if [ -d "$corpus" ]; then
        case $target in
            capture|gzip|decoder|engine|flows|incubate|http|dns|tls|quic) pattern='\.(pcap|pcapng)$' ;;
            *) pattern='\.(yaml|yml)$' ;;
        esac
        n=0
        # Small files only, at most 200 (find's list is cut in the shell, so no pipe breaks under pipefail).
        mapfile -t files < <(find "$corpus" -type f -size -64k 2>/dev/null | grep -E "$pattern" | sort || true)
        for f in "${files[@]:0:200}"; do
            n=$((n + 1))
            if [ "$target" = gzip ]; then
                # The deflate stream and trailer of the compressed capture (the target adds the header).
                gzip -c -n "$f" | tail -c +11 > "$seeds/$n-$(basename "$f").deflate"
            else
                cp "$f" "$seeds/$n-$(basename "$f")"
            fi
        done
    fi
    cp examples/flowtap.yaml "$seeds/" 2>/dev/null || true
    log="$work/$target.log"
    status=0
    FLOWTAP_FUZZ_TARGET=$target "$bin" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
        -artifact_prefix=".build-fuzz/findings/$target/" -print_final_stats=1 "$work/$target-corpus" "$seeds" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)
    cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -n 1 | cut -d' ' -f2)
    found=$(find ".build-fuzz/findings/$target" -type f | wc -l)
    verdict=ok
    if [ "$status" -ne 0 ] || [ "$found" -gt 0 ]; then verdict=FINDING; failed=1; fi
    printf 'fuzz %-13s %12s executions in %ss, coverage %s, findings %s: %s\n' "$target" "${runs:-?}" "$seconds" "${cov:-?}" "$found" "$verdict"
    if [ "$verdict" != ok ]; then tail -n 40 "$log" >&2; fi
done
exit $failed
