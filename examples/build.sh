#!/usr/bin/env bash
# Build every C program under examples/ into a .wasm beside its source.
#
#   examples/build.sh            build all (from any working directory)
#   examples/build.sh FILE.c...  build only these
#
# The .wasm files are committed, so `npm test` works without clang; CI reruns
# this script. Output is deterministic: building twice gives the same bytes
# (sources are compiled from the repository root with relative paths, no debug
# info, a sorted file list, and a .wasm is only replaced when its bytes change). The "name" custom
# section is kept (we never pass -s / --strip-all) so runtimes can print
# backtraces with function names; the script checks that it is there.
#
# examples/include/ is on the include path (for popcorn.h).
# If clang cannot target wasm32-wasi, the script says so and exits 0 without
# touching the committed .wasm files.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

CLANG="${CLANG:-clang}"
SYSROOT="${WASI_SYSROOT:-/usr}"
CFLAGS=(--target=wasm32-wasi "--sysroot=$SYSROOT" -O2 -g0
        -Wall -Wextra -Iexamples/include
        "-ffile-prefix-map=$root/=" -fno-ident)
# --strip-debug drops the DWARF that Debian's prebuilt libc.a carries (~80 KB
# per program); unlike -s / --strip-all it keeps the "name" section.
LDFLAGS=(-Wl,--strip-debug)
LIBS=(-lm)

if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "examples/build.sh: $CLANG not found; keeping the committed .wasm files." >&2
    echo "  (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)" >&2
    exit 0
fi
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
echo 'int main(void){return 0;}' >"$probe_dir/t.c"
if ! "$CLANG" "${CFLAGS[@]}" "$probe_dir/t.c" -o "$probe_dir/t.wasm" 2>"$probe_dir/err"; then
    echo "examples/build.sh: $CLANG cannot build for wasm32-wasi; keeping the committed .wasm files." >&2
    sed 's/^/  /' "$probe_dir/err" >&2
    echo "  (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)" >&2
    exit 0
fi

if [ $# -gt 0 ]; then
    sources=("$@")
else
    mapfile -t sources < <(find examples -name '*.c' -not -path 'examples/include/*' | LC_ALL=C sort)
fi

# True when the .wasm at $1 has a "name" custom section (checked with node if present).
has_name_section() {
    command -v node >/dev/null 2>&1 || return 0
    node -e '
        const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
        process.exit(WebAssembly.Module.customSections(m, "name").length > 0 ? 0 : 1);
    ' "$1"
}

built=0 changed=0
for src in "${sources[@]}"; do
    src="${src#"$root"/}"
    out="${src%.c}.wasm"
    tmp="$probe_dir/out.wasm"
    "$CLANG" "${CFLAGS[@]}" "${LDFLAGS[@]}" "$src" "${LIBS[@]}" -o "$tmp"
    if ! has_name_section "$tmp"; then
        echo "examples/build.sh: $out has no name section" >&2
        exit 1
    fi
    built=$((built + 1))
    if [ -f "$out" ] && cmp -s "$tmp" "$out"; then
        continue
    fi
    cp "$tmp" "$out"
    changed=$((changed + 1))
    echo "built $out"
done
echo "examples/build.sh: $built programs, $changed changed"
