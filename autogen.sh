#!/bin/sh
# Prepares a fresh checkout for ./configure: installs the Debian packages
# chime needs when they are missing (apt-get, through sudo unless root),
# then generates the build system.
#
#   ./autogen.sh && ./configure && make
#
# Set CHIME_SKIP_DEPS=1 to skip the package step.
set -eu
cd "$(dirname "$0")"

# chromium: the trace page's tests open it in headless Chromium
# (tests/test-runner-trace.c). nats-server: the jetstream tests start one
# (tests/test-runner-jetstream.c); libnats-dev: the jetstream plugin and
# `chime consume`.
packages="build-essential autoconf automake libtool pkg-config libltdl-dev
libglib2.0-dev libjansson-dev libcurl4-openssl-dev libcmocka-dev
libprotobuf-c-dev protobuf-c-compiler libnats-dev nats-server
chromium"

missing=""
if [ "${CHIME_SKIP_DEPS:-0}" != 1 ] && command -v dpkg-query >/dev/null 2>&1; then
  for package in $packages; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing="$missing $package"
    fi
  done
  # Node.js runs the independent protobuf decoder of the otlp tests; any
  # node and npm will do (Debian's packages, or NodeSource's, which
  # bundles npm and conflicts with Debian's npm package).
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
  fi
fi

if [ -n "$missing" ]; then
  echo "autogen.sh: installing missing packages:$missing"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi

# protobufjs, the decoder the otlp tests check the plugin's protobuf
# with, installed globally so that every checkout and build finds it.
if [ "${CHIME_SKIP_DEPS:-0}" != 1 ] && command -v npm >/dev/null 2>&1 &&
   ! NODE_PATH="$(npm root -g)" node -e 'require("protobufjs")' >/dev/null 2>&1; then
  echo "autogen.sh: installing protobufjs with npm"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo npm install -g --silent protobufjs@7
fi

autoreconf --force --install
echo "autogen.sh: now run ./configure"
