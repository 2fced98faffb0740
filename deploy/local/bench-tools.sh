#!/usr/bin/env bash
# What each `./smgw bench` compares the gateway against, installed when missing (as infrastructure.sh does for what
# `./smgw up` runs). Usage: bench-tools.sh [pipeline|scan|encrypt]
#   pipeline  Postfix's smtp-source and smtp-sink (package postfix; installed unconfigured, so no MTA starts)
#   scan      clamdscan (Debian ships it apart from clamav-daemon)
#   encrypt   openssl and gpg
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
case "${1:-pipeline}" in
  pipeline)
    # smtp-source and smtp-sink live in /usr/sbin, which a user's PATH may lack.
    if ! PATH="$PATH:/usr/sbin" command -v smtp-source >/dev/null; then
      echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
      apt_install postfix
    fi
    ;;
  scan) install_commands clamdscan=clamdscan ;;
  encrypt) install_commands openssl=openssl gpg=gpg ;;
  *) echo "bench-tools.sh: unknown bench '$1' (pipeline, scan or encrypt)" >&2; exit 2 ;;
esac
