#!/usr/bin/env bash
# Installs (or removes) a pop2mqtt single binary on a Linux device: binary, config skeleton, state dir, systemd unit.
# Usage: install.sh [--prefix DIR] [--binary PATH] [--config-example PATH] [--unit PATH] [--uninstall] [--purge] [--no-systemctl]
#   --prefix DIR          stage everything under DIR (like DESTDIR); no user creation, no systemctl
#   --binary PATH         binary to install (default: pop2mqtt-linux-<arch> next to this script, or dist/ of the repo)
#   --config-example PATH example config copied to /etc/pop2mqtt/config.yaml when that file does not exist yet
#   --unit PATH           systemd unit to install (default: config/pop2mqtt.service of the repo, or next to this script)
#   --uninstall           remove binary and unit; keep config and state
#   --purge               like --uninstall, and also remove config, state and the pop2mqtt system user
#   --no-systemctl        never run systemctl; print what would be run
# Idempotent: running it again replaces binary and unit, and never touches an existing config.yaml.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
SERVICE_USER=pop2mqtt
RUNTIME_STATE_DIR=/var/lib/pop2mqtt

PREFIX=""
BINARY=""
CONFIG_EXAMPLE=""
UNIT_SRC=""
MODE=install
PURGE=0
SYSTEMCTL=1

die() { echo "install.sh: ERROR: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="${2?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
    --binary=*) BINARY="${1#*=}"; shift ;;
    --config-example) CONFIG_EXAMPLE="${2:?--config-example needs a path}"; shift 2 ;;
    --config-example=*) CONFIG_EXAMPLE="${1#*=}"; shift ;;
    --unit) UNIT_SRC="${2:?--unit needs a path}"; shift 2 ;;
    --unit=*) UNIT_SRC="${1#*=}"; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) MODE=uninstall; PURGE=1; shift ;;
    --no-systemctl) SYSTEMCTL=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

if [ -n "$PREFIX" ]; then
  mkdir -p "$PREFIX" || die "cannot create prefix $PREFIX"
  PREFIX="$(cd "$PREFIX" && pwd)"
  [ "$PREFIX" = / ] && PREFIX=""
fi
REAL=0; [ -z "$PREFIX" ] && REAL=1
if [ "$REAL" = 1 ] && [ "$(id -u)" -ne 0 ]; then die "installing into / needs root (or use --prefix DIR)"; fi

BIN_DST="$PREFIX/usr/local/bin/pop2mqtt"
CONF_DIR="$PREFIX/etc/pop2mqtt"
CONF_FILE="$CONF_DIR/config.yaml"
STATE_DIR="$PREFIX$RUNTIME_STATE_DIR"
UNIT_DST="$PREFIX/etc/systemd/system/pop2mqtt.service"

systemd_running() { [ "$REAL" = 1 ] && [ "$SYSTEMCTL" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
# Run a systemctl command when systemd manages this (real) root; otherwise only say what would be run.
run_systemctl() {
  if systemd_running; then say "running: systemctl $*"; systemctl "$@"; else say "would run: systemctl $*"; fi
}
# Copy a file into place atomically (a running binary is replaced, never overwritten in place).
install_file() { # src dst mode
  local tmp; tmp="$(dirname "$2")/.$(basename "$2").new.$$"
  cp "$1" "$tmp" && chmod "$3" "$tmp" && mv -f "$tmp" "$2" || { rm -f "$tmp"; die "cannot install $2"; }
}
# First existing file among the arguments.
first_file() { local f; for f in "$@"; do [ -n "$f" ] && [ -f "$f" ] && { echo "$f"; return 0; }; done; return 1; }

# The binary that fits this userland. dpkg's architecture first: a 32-bit Raspberry Pi OS on a 64-bit kernel says
# aarch64 in uname -m, yet can only run the armv7l binary.
host_target() {
  local a
  a="$(dpkg --print-architecture 2>/dev/null || true)"
  case "$a" in
    amd64) echo x64; return ;; arm64) echo arm64; return ;; armhf) echo armv7l; return ;;
  esac
  case "$(uname -m)" in
    x86_64|amd64) echo x64 ;; aarch64|arm64) echo arm64 ;; armv7l|armv8l) echo armv7l ;;
    *) die "no pop2mqtt binary for CPU $(uname -m) (supported: x86_64, aarch64, armv7l)" ;;
  esac
}

if [ "$MODE" = uninstall ]; then
  if [ -f "$UNIT_DST" ]; then run_systemctl disable --now pop2mqtt.service || say "systemctl disable failed (continuing)"; fi
  rm -f "$BIN_DST" "$UNIT_DST"
  say "removed $BIN_DST and $UNIT_DST"
  run_systemctl daemon-reload
  if [ "$PURGE" = 1 ]; then
    rm -rf "$CONF_DIR" "$STATE_DIR"
    say "purged $CONF_DIR and $STATE_DIR"
    if [ "$REAL" = 1 ] && id "$SERVICE_USER" >/dev/null 2>&1; then
      userdel "$SERVICE_USER" && say "removed system user $SERVICE_USER"
    fi
  else
    say "kept $CONF_DIR and $STATE_DIR (use --purge to remove them)"
  fi
  exit 0
fi

# --- install ----------------------------------------------------------------------------------------------------------
if [ -z "$BINARY" ]; then
  t="$(host_target)"
  BINARY="$(first_file "$SCRIPT_DIR/pop2mqtt-linux-$t" "$REPO_ROOT/dist/pop2mqtt-linux-$t")" \
    || die "no binary given and none found (looked for pop2mqtt-linux-$t next to this script and in dist/); use --binary PATH"
fi
[ -f "$BINARY" ] || die "binary $BINARY does not exist"
version="$("$BINARY" --version 2>/dev/null)" || die "$BINARY does not run on this machine (wrong CPU architecture or missing glibc/libstdc++?)"

UNIT_SRC="$(first_file "$UNIT_SRC" "$REPO_ROOT/config/pop2mqtt.service" "$SCRIPT_DIR/pop2mqtt.service")" \
  || die "systemd unit not found; pass --unit PATH (config/pop2mqtt.service of the release)"

mkdir -p "$(dirname "$BIN_DST")" "$(dirname "$UNIT_DST")" "$CONF_DIR" "$STATE_DIR"
chmod 0755 "$CONF_DIR"
chmod 0700 "$STATE_DIR"

if [ "$REAL" = 1 ]; then
  if ! id "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir "$RUNTIME_STATE_DIR" --shell /usr/sbin/nologin --user-group "$SERVICE_USER" \
      || die "cannot create system user $SERVICE_USER"
    say "created system user $SERVICE_USER"
  fi
  chown "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"
else
  say "would create system user $SERVICE_USER and chown $RUNTIME_STATE_DIR to it (skipped under --prefix)"
fi

install_file "$BINARY" "$BIN_DST" 0755
say "installed $BIN_DST ($version)"

if [ -e "$CONF_FILE" ]; then
  say "kept existing $CONF_FILE"
else
  CONFIG_EXAMPLE="$(first_file "$CONFIG_EXAMPLE" "$REPO_ROOT/config/example.yaml" "$SCRIPT_DIR/example.yaml")" \
    || die "no example config found; pass --config-example PATH (config/example.yaml of the release)"
  tmp="$CONF_DIR/.config.yaml.new.$$"
  # The service can only write below /var/lib/pop2mqtt (ProtectSystem=strict), so the state_dir must point there.
  if grep -q '^state_dir:' "$CONFIG_EXAMPLE"; then
    sed "s|^state_dir:.*|state_dir: $RUNTIME_STATE_DIR|" "$CONFIG_EXAMPLE" > "$tmp"
  else
    { echo "state_dir: $RUNTIME_STATE_DIR"; cat "$CONFIG_EXAMPLE"; } > "$tmp"
  fi
  chmod 0640 "$tmp"
  [ "$REAL" = 1 ] && chgrp "$SERVICE_USER" "$tmp"
  mv "$tmp" "$CONF_FILE"
  say "created $CONF_FILE from $CONFIG_EXAMPLE (mode 0640): edit it before starting the service"
fi

install_file "$UNIT_SRC" "$UNIT_DST" 0644
say "installed $UNIT_DST"
run_systemctl daemon-reload
run_systemctl enable pop2mqtt.service

cat <<NEXT
install.sh: done. Next:
  1. edit /etc/pop2mqtt/config.yaml (secrets: *_file entries next to it, mode 0640 group $SERVICE_USER)
  2. sudo -u $SERVICE_USER pop2mqtt check --config /etc/pop2mqtt/config.yaml
  3. systemctl start pop2mqtt && journalctl -u pop2mqtt -f
NEXT
