#!/usr/bin/env bash
# The cluster tests start their own JetStream cluster from Debian's nats-server (test/nats-servers.ts).
# Installs it when it is missing and this is a Debian machine where we are root; otherwise says what to
# do and lets the other tests run (the cluster tests then fail, saying the same).
set -euo pipefail
server="${PAYCODE_NATS_SERVER:-nats-server}"
command -v "$server" >/dev/null && exit 0
if [ -n "${PAYCODE_NATS_SERVER:-}" ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "The cluster tests need nats-server (2.9 or later): as root run apt-get install nats-server, or set PAYCODE_NATS_SERVER." >&2
  exit 0
fi
echo "Installing Debian's nats-server for the cluster tests" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >/dev/null
