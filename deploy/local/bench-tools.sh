#!/usr/bin/env bash
# What each `./smgw bench` compares the gateway against, installed when missing (as infrastructure.sh does for what
# `./smgw up` runs). Usage: bench-tools.sh [pipeline|peers|scan|encrypt]
#   pipeline  Postfix's smtp-source and smtp-sink (package postfix; installed unconfigured, so no MTA starts)
#   peers     the pipeline's tools, and the peers `./smgw bench` runs beside the gateway: Postfix (a plain relay) and
#             amavisd-new in front of clamd. Installed without starting or enabling any system service: the bench
#             runs them with its own configuration, folders and ports (scripts/src/bench-peers.ts).
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
  peers)
    bash "$0" pipeline
    if ! dpkg -s amavisd-new >/dev/null 2>&1; then
      # No package may start its service here: Debian's invoke-rc.d asks policy-rc.d (101 = do not start).
      own_policy=0
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
      fi
      trap '[ $own_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
      apt_install amavisd-new clamav-daemon
    fi
    # Never a system MTA or content filter: the bench starts and stops its own instances.
    for service in postfix amavis amavis-mc amavisd-snmp-subagent; do
      [ -e "/etc/init.d/$service" ] || [ -e "/lib/systemd/system/$service.service" ] || continue
      if command -v systemctl >/dev/null; then systemctl disable --quiet "$service" >/dev/null 2>&1 || true; fi
      if command -v update-rc.d >/dev/null; then update-rc.d "$service" disable >/dev/null 2>&1 || true; fi
    done
    ;;
  scan) install_commands clamdscan=clamdscan ;;
  encrypt) install_commands openssl=openssl gpg=gpg ;;
  *) echo "bench-tools.sh: unknown bench '$1' (pipeline, peers, scan or encrypt)" >&2; exit 2 ;;
esac
