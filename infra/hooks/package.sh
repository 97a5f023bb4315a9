#!/bin/sh
# azd prepackage hook of the `handler` service: builds the handler for Linux x86_64 (what Flex
# Consumption runs) and lays out the function-app folder that azure.yaml's `dist` names:
# host.json, the function folders and the `handler` binary, written by `handler package`. The
# binary is built without default features: no `handler dev`, no ACI emulator linked in.
#
# Runs from the repository root (the service's project). BERTH_PACKAGE_TARGET picks a Rust target
# triple to cross-build for, e.g. x86_64-unknown-linux-musl for a static binary (then also needed
# on a Linux host whose glibc is newer than the Functions image's); it is required on hosts that
# are not Linux x86_64. BERTH_PACKAGE_DIST writes the folder elsewhere (bench/run.sh measures the
# packaged binary there).
set -eu

dist=${BERTH_PACKAGE_DIST:-target/functionapp}
target=${BERTH_PACKAGE_TARGET:-}
if [ -z "$target" ] && [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
  echo "berth: this host is $(uname -s)/$(uname -m); Flex Consumption runs Linux x86_64." >&2
  echo "berth: set BERTH_PACKAGE_TARGET (e.g. x86_64-unknown-linux-musl) to cross-build." >&2
  exit 1
fi
command -v cargo >/dev/null 2>&1 || { echo "berth: cargo is needed to build the handler (https://rustup.rs)" >&2; exit 1; }

cargo_target_dir=${CARGO_TARGET_DIR:-target}
if [ -n "$target" ]; then
  cargo build --release --locked -p handler --no-default-features --target "$target"
  binary=$cargo_target_dir/$target/release/handler
else
  cargo build --release --locked -p handler --no-default-features
  binary=$cargo_target_dir/release/handler
fi

rm -rf "$dist" "$dist.zip"
mkdir -p "$(dirname "$dist")"
# The package runs on Linux x86_64, so a cross-built binary cannot be run here to package itself:
# use a native build of the same sources to lay out the folder, then put the target binary in it.
if [ -n "$target" ]; then
  cargo build --release --locked -p handler --no-default-features
  packager=$cargo_target_dir/release/handler
else
  packager=$binary
fi
"$packager" package --out "$dist" --binary "$binary"
test -x "$dist/handler" || { echo "berth: $dist/handler is missing after packaging" >&2; exit 1; }
test -f "$dist/host.json" || { echo "berth: $dist/host.json is missing after packaging" >&2; exit 1; }
echo "berth: function app package in $dist"
