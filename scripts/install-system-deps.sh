#!/usr/bin/env bash
# Installs the Debian packages the test harness and the bench need (real POP3 servers, MQTT broker, openssl, fetchmail, GNU time), only those missing, without starting system services.
set -euo pipefail

PACKAGES=(dovecot-core dovecot-pop3d mailutils-pop3d mosquitto mosquitto-clients openssl fetchmail systemd time)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "install-system-deps: not root and sudo is not available" >&2
    exit 1
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system-deps: all present (${PACKAGES[*]})"
else
  echo "install-system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep packages from starting their system services: a policy-rc.d that denies every action,
  # installed only for the duration of this script when none exists already.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    "${SUDO[@]}" sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
    created_policy=1
  fi
  cleanup() { if [ "$created_policy" -eq 1 ]; then "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
fi

# Make sure no system daemon was started by the packages (ours run on free ports with their own configs).
# A system daemon is one started without an explicit config, or with the config under /etc; harness
# instances always pass a config file inside a temp directory and are never touched here.
stop_system_daemon() {
  local name="$1"
  local pid cmd
  for pid in $(pgrep -x "$name" 2>/dev/null || true); do
    cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)"
    [ -n "$cmd" ] || continue
    if grep -Eq -- '(^| )(-c|--config-file)[ =]/etc/' <<<"$cmd" || ! grep -Eq -- '(^| )(-c|--config-file)[ =]' <<<"$cmd"; then
      echo "install-system-deps: stopping system $name (pid $pid: $cmd)"
      "${SUDO[@]}" kill "$pid" 2>/dev/null || true
    fi
  done
}
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for svc in dovecot mosquitto mailutils-pop3d; do
    "${SUDO[@]}" systemctl stop "$svc" 2>/dev/null || true
    "${SUDO[@]}" systemctl disable "$svc" 2>/dev/null || true
  done
fi
stop_system_daemon dovecot
stop_system_daemon mosquitto
stop_system_daemon pop3d

for bin in dovecot mosquitto mosquitto_passwd openssl fetchmail; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || { echo "install-system-deps: $bin not found after install" >&2; exit 1; }
done
[ -x /usr/sbin/pop3d ] || command -v pop3d >/dev/null 2>&1 || { echo "install-system-deps: pop3d (mailutils) not found" >&2; exit 1; }
echo "install-system-deps: ok"
