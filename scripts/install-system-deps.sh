#!/usr/bin/env bash
# Installs the Debian packages the test harness and the bench need (real POP3 servers, MQTT broker, openssl, fetchmail, GNU time), only those missing, without starting system services.
set -euo pipefail

# skopeo: the image tests read the container images with it (test/binaries/image.test.ts).
PACKAGES=(dovecot-core dovecot-pop3d mailutils-pop3d mosquitto mosquitto-clients openssl fetchmail systemd time skopeo)
# Cyrus pop3d 3.6 is the second real server of the integration tests (test/support/cyrus.ts). Its packages conflict
# with dovecot-pop3d, so they are never installed: below they are downloaded and unpacked into a private root. Only
# the libraries its master, pop3d, lmtpd and deliver link to come from apt, with sasl2-bin for saslpasswd2.
CYRUS_LIBS=(libical3 libicu72 libjansson4 libkrb5-3 libldap-2.5-0 libpcre3 libpq5 libsasl2-2 libsasl2-modules
  libsqlite3-0 libssl3 libstdc++6 libwrap0 libxapian30 libxml2 sasl2-bin)
PACKAGES+=("${CYRUS_LIBS[@]}")

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

# Cyrus: apt-get download + dpkg-deb -x into .cache/cyrus/root (as the binary build does with Node), once.
CYRUS_DIR="${POP2MQTT_CACHE_DIR:-$(cd "$(dirname "$0")/.." && pwd)/.cache}/cyrus"
if [ ! -x "$CYRUS_DIR/root/usr/lib/cyrus/bin/pop3d" ]; then
  echo "install-system-deps: unpacking cyrus-common and cyrus-pop3d into $CYRUS_DIR/root"
  dl="$(mktemp -d)"
  chmod 755 "$dl" # apt's _apt user writes the download there
  if ! (cd "$dl" && apt-get download -qq cyrus-common cyrus-pop3d); then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    (cd "$dl" && apt-get download -qq cyrus-common cyrus-pop3d)
  fi
  rm -rf "$CYRUS_DIR/root.tmp"
  mkdir -p "$CYRUS_DIR/root.tmp"
  for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$CYRUS_DIR/root.tmp"; done
  rm -rf "$dl" "$CYRUS_DIR/root"
  mv "$CYRUS_DIR/root.tmp" "$CYRUS_DIR/root"
fi
# The cyrus user must be able to reach the binaries (the master drops to it before it runs a service).
chmod go+rx "$CYRUS_DIR" "$CYRUS_DIR/root"
missing_libs="$(LD_LIBRARY_PATH="$CYRUS_DIR/root/usr/lib/x86_64-linux-gnu:$CYRUS_DIR/root/usr/lib/$(uname -m)-linux-gnu" \
  ldd "$CYRUS_DIR/root/usr/lib/cyrus/bin/pop3d" "$CYRUS_DIR/root/usr/lib/cyrus/bin/master" 2>&1 | grep 'not found' || true)"
[ -z "$missing_libs" ] || { printf 'install-system-deps: Cyrus libraries missing:\n%s\n' "$missing_libs" >&2; exit 1; }
command -v saslpasswd2 >/dev/null 2>&1 || { echo "install-system-deps: saslpasswd2 (sasl2-bin) not found" >&2; exit 1; }

for bin in dovecot mosquitto mosquitto_passwd openssl fetchmail; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || { echo "install-system-deps: $bin not found after install" >&2; exit 1; }
done
[ -x /usr/sbin/pop3d ] || command -v pop3d >/dev/null 2>&1 || { echo "install-system-deps: pop3d (mailutils) not found" >&2; exit 1; }
echo "install-system-deps: ok"
