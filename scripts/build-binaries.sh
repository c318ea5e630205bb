#!/usr/bin/env bash
# Builds the single-file pop2mqtt binaries (Node SEA: esbuild bundle + code-cache blob injected into a pinned, stripped Node).
# Usage: scripts/build-binaries.sh [--targets x64,arm64,armv7l] [--entry FILE] [--skip-bundle]
# Output: dist/pop2mqtt-linux-<target> and dist/SHA256SUMS (for the targets built in this run); sizes printed at the end.
set -euo pipefail
# V8 flags baked into each binary (SEA execArgv; empty: none); one flag, so it fits the JSON below as a single string.
# --max-semi-space-size=4 was here before src/heap-policy.ts: with the heap policy it only cost memory on Node 22
# (memory-w4 --messages 300: idle once 77.7 -> 83.3 MiB, W1 94.1 -> 100.9, W4 107.8 -> 115.7, CPU time the same).
SEA_EXEC_ARGV=""
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=binaries/targets.sh
. "$ROOT/scripts/binaries/targets.sh"

TARGETS_ARG="${POP2MQTT_BUILD_TARGETS:-$ALL_TARGETS}"
ENTRY=""
SKIP_BUNDLE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS_ARG="${2:?--targets needs a value}"; shift 2 ;;
    --entry) ENTRY="${2:?--entry needs a file}"; shift 2 ;;
    --skip-bundle) SKIP_BUNDLE=1; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
TARGETS="$(parse_targets "$TARGETS_ARG")"

mkdir -p "$BASES_DIR" "$SEA_DIR" "$DIST_DIR"
# The cache holds downloaded Node bases and build scratch; keep it out of git without touching .gitignore.
[ -f "$CACHE_DIR/.gitignore" ] || echo '*' > "$CACHE_DIR/.gitignore"

# --- host tools -----------------------------------------------------------------------------------------------------
pkgs=""
for t in $TARGETS; do pkgs="$pkgs $(target_apt_packages "$t")"; done
# shellcheck disable=SC2086
ensure_apt_packages $(echo "$pkgs" | tr ' ' '\n' | sort -u)
POSTJECT="$ROOT/node_modules/.bin/postject"
[ -x "$POSTJECT" ] || die "postject missing: run npm ci (devDependency postject@1.0.0-alpha.6)"
command -v npm >/dev/null || die "npm not found"

sha512_of() {
  node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
}

# --- Node bases: npm pack, integrity check against the pinned value and the registry, extract bin/node -----------------
fetch_base() {
  local t="$1" pkg ver want dir tgz got reg tmp
  pkg="$(target_pkg "$t")"; ver="$(target_node_version "$t")"; want="$(target_integrity "$t")"
  dir="$BASES_DIR/$pkg-$ver"; tgz="$BASES_DIR/$pkg-$ver.tgz"
  if [ -x "$dir/node" ] && [ "$(cat "$dir/.integrity" 2>/dev/null)" = "$want" ]; then return 0; fi
  if [ ! -f "$tgz" ]; then
    note "downloading $pkg@$ver"
    (cd "$BASES_DIR" && npm pack --silent --pack-destination "$BASES_DIR" "$pkg@$ver" >/dev/null 2>"$BASES_DIR/npm-pack.log") \
      || { cat "$BASES_DIR/npm-pack.log" >&2; die "npm pack $pkg@$ver failed"; }
    [ -f "$tgz" ] || die "npm pack did not produce $tgz"
  fi
  got="$(sha512_of "$tgz")"
  if [ "$got" != "$want" ]; then
    rm -f "$tgz"
    die "$pkg@$ver tarball integrity mismatch: got $got, pinned $want (tarball removed)"
  fi
  if reg="$(npm view "$pkg@$ver" dist.integrity 2>/dev/null)" && [ -n "$reg" ]; then
    [ "$reg" = "$want" ] || die "$pkg@$ver: registry dist.integrity $reg differs from the pinned $want"
  else
    note "registry not reachable for $pkg@$ver; relying on the pinned integrity only"
  fi
  tmp="$(mktemp -d "$BASES_DIR/.extract.XXXXXX")"
  tar -xzf "$tgz" -C "$tmp" package/bin/node || { rm -rf "$tmp"; die "cannot extract package/bin/node from $tgz"; }
  rm -rf "$dir"; mkdir -p "$dir"
  mv "$tmp/package/bin/node" "$dir/node"; rm -rf "$tmp"
  chmod 755 "$dir/node"
  echo "$want" > "$dir/.integrity"
  note "$pkg@$ver verified ($want)"
}

# --- bundle ---------------------------------------------------------------------------------------------------------
BUNDLE="$SEA_DIR/pop2mqtt.cjs"
if [ "$SKIP_BUNDLE" = 1 ]; then
  [ -f "$BUNDLE" ] || die "--skip-bundle given but $BUNDLE does not exist"
else
  if [ -z "$ENTRY" ]; then
    [ -f "$ROOT/src/cli/main.ts" ] || die "src/cli/main.ts does not exist yet (pass --entry FILE to build from another entry)"
    ENTRY="$ROOT/src/cli/main.ts"
  fi
  note "bundling $ENTRY"
  node "$ROOT/scripts/build-bundle.mjs" --entry "$ENTRY" --outfile "$BUNDLE" || die "esbuild bundle failed"
  # Node 20.11 (armv7l) has no SEA assets: its binary embeds the one-file bundle instead of main file + chunks.
  node "$ROOT/scripts/build-bundle.mjs" --entry "$ENTRY" --outfile "$SEA_DIR/single/pop2mqtt.cjs" --single || die "esbuild bundle failed"
fi
# SEA "assets": the lazily loaded chunks next to the main file, under the names the bundle's loader asks for.
sea_assets_json() {
  node -e 'const p=require("path"),d=p.dirname(process.argv[1]),ix=require(p.join(d,"pop2mqtt-chunks","index.json"));
process.stdout.write(JSON.stringify(Object.fromEntries(Object.keys(ix.chunks).map((a)=>[a,p.join(d,a)]))))' "$1"
}

# --- one target -----------------------------------------------------------------------------------------------------
build_target() {
  local t="$1" node_bin work out tmpbin runner strip_tool
  fetch_base "$t"
  node_bin="$BASES_DIR/$(target_pkg "$t")-$(target_node_version "$t")/node"
  work="$SEA_DIR/$t"; rm -rf "$work"; mkdir -p "$work"
  runner="$(target_runner "$t")"
  strip_tool="$(target_strip "$t")"
  command -v "$strip_tool" >/dev/null || die "$strip_tool not found"

  # The blob (with V8 code cache) must come from the very Node that runs it, so it is made by the base itself.
  # execArgv (Node >= 22.20; older bases ignore it, and their code cache must then be made without the flag as well).
  exec_argv=""; exec_json=""; main="$BUNDLE"
  case "$(target_node_version "$t")" in
    20.*) main="$SEA_DIR/single/pop2mqtt.cjs"; [ -f "$main" ] || die "$main missing (rebuild without --skip-bundle)" ;;
    *) exec_json=", \"assets\": $(sea_assets_json "$BUNDLE")"
       if [ -n "$SEA_EXEC_ARGV" ]; then exec_argv="$SEA_EXEC_ARGV"; exec_json="$exec_json, \"execArgv\": [\"$SEA_EXEC_ARGV\"]"; fi ;;
  esac
  cat > "$work/sea-config.json" <<JSON
{"main": "$main", "output": "$work/app.blob", "disableExperimentalSEAWarning": true, "useCodeCache": true$exec_json}
JSON
  note "[$t] generating SEA blob with node $(target_node_version "$t")${runner:+ under ${runner%% *}}"
  # shellcheck disable=SC2086
  # The same V8 flags as execArgv: V8 rejects a code cache made under different flags.
  (cd "$work" && env -u NODE_OPTIONS $runner "$node_bin" $exec_argv --experimental-sea-config "$work/sea-config.json") >"$work/blob.log" 2>&1 \
    || { cat "$work/blob.log" >&2; die "[$t] blob generation failed"; }
  [ -s "$work/app.blob" ] || { cat "$work/blob.log" >&2; die "[$t] no blob written"; }

  out="$(target_binary "$t")"; tmpbin="$work/pop2mqtt"
  cp "$node_bin" "$tmpbin"; chmod 755 "$tmpbin"
  "$strip_tool" --strip-all "$tmpbin" || die "[$t] $strip_tool failed"
  "$POSTJECT" "$tmpbin" NODE_SEA_BLOB "$work/app.blob" --sentinel-fuse "$SEA_FUSE" >"$work/postject.log" 2>&1 \
    || { cat "$work/postject.log" >&2; die "[$t] postject failed"; }

  # Smoke: the binary must start and answer --version (catches blob/base mismatches, which abort at start).
  local v
  # shellcheck disable=SC2086
  v="$(cd / && env -u NODE_OPTIONS timeout 120 $runner "$tmpbin" --version 2>"$work/version.err")" \
    || { cat "$work/version.err" >&2; die "[$t] built binary does not start (--version failed)"; }
  [ -n "$v" ] || die "[$t] --version printed nothing"
  mv -f "$tmpbin" "$out"
  note "[$t] built $out (--version: $v)"
}

start=$(date +%s)
for t in $TARGETS; do build_target "$t"; done

# --- checksums and sizes --------------------------------------------------------------------------------------------
(
  cd "$DIST_DIR"
  files=""
  for t in $TARGETS; do files="$files pop2mqtt-linux-$t"; done
  # shellcheck disable=SC2086
  sha256sum $files > SHA256SUMS
)
echo
echo "Built in $(( $(date +%s) - start )) s; checksums in dist/SHA256SUMS"
printf '%-26s %12s %12s\n' binary "raw bytes" "gzip bytes"
for t in $TARGETS; do
  f="$(target_binary "$t")"; raw="$(stat -c %s "$f")"; gz="$(gzip -6 -c "$f" | wc -c)"
  printf '%-26s %12s %12s   (%s MiB / %s MiB)\n' "$(basename "$f")" "$raw" "$gz" "$(( raw / 1048576 ))" "$(( gz / 1048576 ))"
done
