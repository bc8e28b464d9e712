# Shared by the data scripts: installs missing Debian packages (with sudo when not root).
ensure_packages() {
  local missing=() p sudo=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { $sudo apt-get update -q >/dev/null &&
      $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
}
