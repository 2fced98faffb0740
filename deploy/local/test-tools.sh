#!/usr/bin/env bash
# Tools the test suite drives as independent peers: swaks (a real SMTP client), openssl and gpg, docker-compose
# (to validate docker-compose.yml; no engine needed), kubectl (to render the Kubernetes manifests offline) and zip
# (scan's tests build encrypted and nested zip archives), xmllint (libxml2-utils: the trusted-list tests validate the
# ETSI validation report against its schema), chromium (the portal's browser tests, driven by playwright-core) and
# pdftotext and pdfsig (poppler-utils: signature-verify's tests read the text of its PDF report, and pdfsig is the
# second opinion on every signed PDF).
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
install_commands swaks=swaks openssl=openssl gpg=gpg docker-compose=docker-compose kubectl=kubectl zip=zip \
  xmllint=libxml2-utils chromium=chromium pdftotext=poppler-utils pdfsig=poppler-utils
