#!/usr/bin/env bash
# FlowTap's tests: the whole suite (debug build), then the allocation-count
# tests in a release build with the malloc-counting shim (scripts/malloc-count.c)
# preloaded. Without the shim those tests skip; here a skip is a failure.
#
#   scripts/test.sh                    # everything
#   scripts/test.sh --filter FlowsTests  # extra arguments go to the `swift test` step only
#
# FLOWTAP_SCRATCH_PATH, when set, is passed to both builds as --scratch-path.
# FLOWTAP_SKIP_SUITE=1 runs only the allocation step.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=()
if [ -n "${FLOWTAP_SCRATCH_PATH:-}" ]; then scratch=(--scratch-path "$FLOWTAP_SCRATCH_PATH"); fi

if [ "${FLOWTAP_SKIP_SUITE:-0}" != 1 ]; then
    # The layers of docs/architecture.md: every import declared, nothing below the commands needs Engine.
    python3 scripts/module-graph.py --check
    swift test --disable-swift-testing "${scratch[@]}" "$@"
fi

echo "test.sh: allocation tests, release build, malloc-counting shim preloaded"
# Every test class whose file uses the counter, as Module.Class.
classes=()
while IFS= read -r file; do
    module=$(echo "$file" | cut -d/ -f2)
    while IFS= read -r class; do
        classes+=("$module.$class")
    done < <(sed -n 's/^\(final \)\{0,1\}class \([A-Za-z0-9_]*\) *: *XCTestCase.*/\2/p' "$file")
done < <(grep -rl --include='*.swift' 'mallocCallCounter()' Tests | grep -v '^Tests/TestSupport/' | sort)
if [ ${#classes[@]} -eq 0 ]; then
    echo "test.sh: no allocation test classes found under Tests/" >&2
    exit 1
fi

# Testable imports need -enable-testing, which `swift test` passes for itself and `swift build` does not.
swift build -c release --build-tests -Xswiftc -enable-testing "${scratch[@]}"
bin=$(swift build -c release --show-bin-path "${scratch[@]}")
bundles=()
for candidate in "$bin"/*PackageTests.xctest; do
    [ -e "$candidate" ] && bundles+=("$candidate")
done
if [ ${#bundles[@]} -ne 1 ]; then
    echo "test.sh: expected one *PackageTests.xctest in $bin, found ${#bundles[@]}" >&2
    exit 1
fi
bundle=${bundles[0]}
# On Linux the bundle is an executable; on a layout where it is a directory, run the binary inside it.
if [ -d "$bundle" ]; then
    inner=$(find "$bundle" -type f -perm -u+x -name '*PackageTests*' | head -n 1)
    [ -n "$inner" ] || { echo "test.sh: no test executable inside $bundle" >&2; exit 1; }
    bundle=$inner
fi

shim_dir=$(mktemp -d)
trap 'rm -rf "$shim_dir"' EXIT
cc -O2 -shared -fPIC -o "$shim_dir/libmalloc-count.so" scripts/malloc-count.c

# One process per class, so each class's lines are its own.
failed=0
summary=()
for class in "${classes[@]}"; do
    log="$shim_dir/$class.log"
    status=0
    LD_PRELOAD="$shim_dir/libmalloc-count.so" "$bundle" "$class" >"$log" 2>&1 || status=$?
    # XCTest prints "Test Case '…' passed (…)", "failed (…)" or "skipped (…)" per test.
    passed=$(grep -cE "^Test Case '[^']*' passed" "$log" || true)
    failures=$(grep -cE "^Test Case '[^']*' failed" "$log" || true)
    skipped=$(grep -cE "^Test Case '[^']*' skipped" "$log" || true)
    verdict=ok
    if [ "$status" -ne 0 ] || [ "$failures" -gt 0 ] || [ "$skipped" -gt 0 ] || [ "$passed" -eq 0 ]; then
        verdict=FAIL
        failed=1
        echo "test.sh: $class: exit status $status; a skip means the shim was not loaded; log:" >&2
        cat "$log" >&2
    fi
    summary+=("$(printf '  %-38s passed %s, failed %s, skipped %s: %s' "$class" "$passed" "$failures" "$skipped" "$verdict")")
    # The test's own figures (lines such as "allocation check: 0 mallocs over 80000 fragments").
    while IFS= read -r line; do summary+=("      $line"); done < <(grep -E '^[a-z ]*allocation' "$log" || true)
done
echo "test.sh: allocation tests (release, shim preloaded):"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "test.sh: allocation tests failed" >&2
    exit 1
fi
echo "test.sh: all ${#classes[@]} allocation test classes passed with the shim loaded"
