#!/usr/bin/env bash
# The Debian packages the local voice engines need (no network at run time, no model downloads):
# espeak-ng (text-to-speech), pocketsphinx + pocketsphinx-en-us (speech-to-text), and chromium for the console's
# browser tests. Installs what is missing
# when it can (root or sudo with apt-get); otherwise says what to install and fails.
set -euo pipefail
need=()
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v pocketsphinx_continuous >/dev/null 2>&1 || need+=(pocketsphinx)
[ -d /usr/share/pocketsphinx/model/en-us/en-us ] || need+=(pocketsphinx-en-us)
# The console's browser tests drive Debian's Chromium through playwright-core (never a downloaded browser).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ -z "$sudo" ]; }; then
  echo "Missing system packages: ${need[*]}. Install them (Debian/Ubuntu: apt-get install ${need[*]})." >&2
  exit 1
fi
echo "Installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
  { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
