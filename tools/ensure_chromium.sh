#!/usr/bin/env bash
# The browser test drives Debian's chromium. Install it when missing and we may (root, apt-get);
# otherwise say how, and the browser test is skipped with that reason.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser test..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
    || echo "Could not install chromium; the browser test will be skipped."
else
  echo "chromium is not installed; the browser test will be skipped (install it with: sudo apt-get install chromium)."
fi
exit 0
