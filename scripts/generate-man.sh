#!/usr/bin/env bash
# Regenerates docs/man/flowtap.1 from the commands' --help texts with swift-argument-parser's
# generate-manual plugin (one page, every subcommand in it). Run it after changing any help text;
# ManualPageTests fails while the page misses an option. install.sh and build-deb.sh install the
# committed page, so installing needs no plugin build.
set -euo pipefail
cd "$(dirname "$0")/.."
date=$(git log -1 --format=%cs 2>/dev/null || date +%F)
swift package plugin generate-manual --configuration debug --date "$date" >/dev/null
cp .build/plugins/GenerateManual/outputs/flowtap/flowtap.1 docs/man/flowtap.1
echo "generate-man.sh: docs/man/flowtap.1 ($(wc -l < docs/man/flowtap.1) lines, dated $date)"
