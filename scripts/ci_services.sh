#!/usr/bin/env bash
# Services the full test suite talks to, for CI and for a developer machine (Debian, as root):
# PostgreSQL on 127.0.0.1 with a throw-away test database, and geth for the validator network.
# Prints the environment to export; changes nothing else.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -h 127.0.0.1" && break
  sleep 1
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='veche'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE veche LOGIN PASSWORD 'veche'\"" >&2
su postgres -c "psql -qc 'DROP DATABASE IF EXISTS veche_test'" >&2
su postgres -c "psql -qc 'CREATE DATABASE veche_test OWNER veche'" >&2
echo "export VECHE_TEST_DATABASE_URL=postgresql://veche:veche@127.0.0.1:5432/veche_test"
