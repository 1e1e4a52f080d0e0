#!/usr/bin/env bash
# Installs the editor the end-to-end tests drive, reproducibly and without downloads
# outside the package registries:
#   - Debian packages: build tools and headers for code-server's native modules,
#     ripgrep, and the chromium that playwright-core drives;
#   - code-server 4.100.3 (VS Code 1.100.3) from tests/e2e/editor's lockfile;
#   - playwright-core from tests/e2e/driver's lockfile.
# Everything lands in .cache/editor/; a stamp (the lockfiles' hash) makes a warm run a
# no-op. Run by `make editor`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=$REPO/.cache/editor
EDITOR_SRC=$REPO/tests/e2e/editor
DRIVER_SRC=$REPO/tests/e2e/driver
STAMP=$CACHE/.installed
RIPGREP_VERSION=1.15.11
RIPGREP_ASSET=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

DEBIAN_PACKAGES=(build-essential python3 pkg-config libkrb5-dev libxkbfile-dev
    libsecret-1-dev ripgrep chromium fonts-dejavu-core curl)

log() { printf 'setup-editor: %s\n' "$*" >&2; }

wanted_hash() {
    cat "$0" "$EDITOR_SRC/package.json" "$EDITOR_SRC/package-lock.json" \
        "$DRIVER_SRC/package.json" "$DRIVER_SRC/package-lock.json" | sha256sum | cut -d' ' -f1
}

missing_packages() {
    local pkg
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || printf '%s\n' "$pkg"
    done
}

install_debian_packages() {
    local missing
    missing=$(missing_packages)
    if [ -z "$missing" ]; then
        return
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages (run as root to install them): $(echo $missing)"
        exit 1
    fi
    log "installing Debian packages: $(echo $missing)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
}

# code-server's ripgrep dependency downloads rg in its postinstall; give it Debian's rg
# in the download cache it looks in first.
seed_ripgrep_cache() {
    local tmp=$1 dir
    dir=$tmp/vscode-ripgrep-cache-$RIPGREP_VERSION
    mkdir -p "$dir"
    tar -czf "$dir/$RIPGREP_ASSET" -C /usr/bin rg
}

install_editor() {
    local tmp
    rm -rf "$CACHE/code-server" "$CACHE/driver"
    mkdir -p "$CACHE/code-server" "$CACHE/driver" "$CACHE/tmp"
    tmp=$(mktemp -d "$CACHE/tmp/install.XXXXXX")
    seed_ripgrep_cache "$tmp"
    cp "$EDITOR_SRC/package.json" "$EDITOR_SRC/package-lock.json" "$CACHE/code-server/"
    log "installing code-server (a few minutes on a cold machine)"
    (
        cd "$CACHE/code-server"
        # unsafe_perm: the postinstall refuses root otherwise; yes: node-pty's build runs
        # npx; nodedir: build native modules against the installed Node's headers; the
        # postinstall runs npm installs of its own, so scripts are allowed for all of them.
        TMPDIR=$tmp npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir=/usr \
            npm_config_dangerously_allow_all_scripts=true npm_config_update_notifier=false \
            npm ci --no-audit --no-fund --foreground-scripts
    )
    test -x "$CACHE/code-server/node_modules/.bin/code-server"
    test -x "$CACHE/code-server/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
    cp "$DRIVER_SRC/package.json" "$DRIVER_SRC/package-lock.json" "$CACHE/driver/"
    (cd "$CACHE/driver" && npm ci --no-audit --no-fund --ignore-scripts)
    rm -rf "$tmp"
}

install_debian_packages
hash=$(wanted_hash)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$hash" ] \
    && [ -x "$CACHE/code-server/node_modules/.bin/code-server" ]; then
    exit 0
fi
start=$(date +%s)
install_editor
echo "$hash" >"$STAMP"
log "editor ready in $(($(date +%s) - start)) s: $CACHE"
