#!/bin/sh
# Installs Debian's Chromium for the browser tests (Playwright drives it through
# executable_path; Playwright's own browser download is not used). Idempotent:
# does nothing when the browser is already there, so `make test` can always call it.
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-chromium: /usr/bin/chromium is missing and installing it needs root;" \
         "the browser tests will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-liberation fonts-dejavu-core
