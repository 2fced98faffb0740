#!/usr/bin/env bash
# Tools the test suite drives as independent peers: swaks (a real SMTP client), openssl and gpg, docker-compose
# (to validate docker-compose.yml; no engine needed), kubectl (to render the Kubernetes manifests offline) and zip.
set -euo pipefail
missing=()
command -v swaks >/dev/null || missing+=(swaks)
command -v openssl >/dev/null || missing+=(openssl)
command -v gpg >/dev/null || missing+=(gpg)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v kubectl >/dev/null || missing+=(kubectl)
command -v zip >/dev/null || missing+=(zip) # scan's tests build (encrypted, nested) zip archives
if [ ${#missing[@]} -gt 0 ]; then
  echo "smgw: installing test tools: ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
