#!/usr/bin/env bash
# Installs the Debian packages that some tests use (chromium for the report, SLURM, the
# Fashion-MNIST files) when this machine allows it; the tests that need one skip, saying why,
# when it is missing.
set -uo pipefail
wanted="chromium dataset-fashion-mnist"
missing=""
for package in $wanted; do
  dpkg -s "$package" >/dev/null 2>&1 || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "[tests] not root or no apt-get: not installing$missing; tests that need them will skip"
  exit 0
fi
echo "[tests] installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
  || echo "[tests] apt-get could not install$missing; tests that need them will skip"
exit 0
