#!/bin/sh
# Fetches the small Open Bandit Dataset sample (10,000 rows of the "random" logging
# policy, all campaign) bundled in the obp 0.4.1 Python package, into DIR (default
# ./obd-sample), without installing anything. The dataset is CC BY 4.0 (ZOZO, Inc.);
# it is not part of this repository: do not commit it.
#   scripts/fetch_obd_sample.sh [DIR]
#   cargo run --release --example evaluate -- --obd DIR/random/all --policy uniform --json out.json
set -eu
dir="${1:-obd-sample}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pip download obp==0.4.1 --no-deps --quiet -d "$tmp"
mkdir -p "$dir"
(cd "$tmp" && unzip -q -o obp-0.4.1-py3-none-any.whl 'obp/dataset/obd/*')
cp -R "$tmp/obp/dataset/obd/." "$dir/"
echo "wrote $dir (random/all, random/men, random/women, bts/...)"
