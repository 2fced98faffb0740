# Sourced by the local set-up scripts (infrastructure.sh, test-tools.sh, bench-tools.sh) on a Debian machine:
# installs what is missing, with apt-get update run at most once per script.
apt_updated=0

# apt_install PACKAGE...: installs those not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    printf '\033[1;31msmgw\033[0m need root to install %s (apt-get install %s)\n' "${missing[*]}" "${missing[*]}" >&2
    exit 1
  fi
  if [ $apt_updated -eq 0 ]; then apt-get update -qq >&2; apt_updated=1; fi
  printf '\033[1;34msmgw\033[0m installing %s\n' "${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# install_commands COMMAND=PACKAGE...: installs the package of each command that is not on PATH.
install_commands() {
  local packages=()
  for pair in "$@"; do command -v "${pair%%=*}" >/dev/null || packages+=("${pair#*=}"); done
  [ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"
}
