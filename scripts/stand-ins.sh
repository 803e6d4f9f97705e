#!/usr/bin/env bash
# The AWS stand-ins the tests talk to, over the real protocols, on 127.0.0.1 only:
#   moto_server  (IAM, STS, Lambda, Step Functions, CloudWatch Logs: `moto[server]` from PyPI)
#   s3s-fs       (S3 over a local folder, checks SigV4: `cargo install s3s-fs`)
#   cargo-lambda (`cargo lambda watch`, the Lambda emulator; PyPI wheel, brings zig)
# The emulator itself is started by each test that needs it (a fresh queue per test).
# `install` also brings headless Chromium (Debian's `chromium`, through apt-get), which the
# report test renders `cai report`'s page in.
#
#   scripts/stand-ins.sh install   # idempotent; into $CAI_TOOLS (default ~/.cache/cai-tools)
#   scripts/stand-ins.sh start     # starts moto + s3s-fs, writes $CAI_TOOLS/run/env
#   scripts/stand-ins.sh stop
#   source "$CAI_TOOLS/run/env"    # exports CAI_TEST_* for the tests
set -euo pipefail

TOOLS="${CAI_TOOLS:-$HOME/.cache/cai-tools}"
VENV="$TOOLS/venv"
RUN="$TOOLS/run"
# Exact versions, so a release of any of them cannot change CI without a change here.
S3S_VERSION=0.14.1
MOTO_VERSION=5.2.5
CARGO_LAMBDA_VERSION=1.9.2
PINNED="cargo-lambda==$CARGO_LAMBDA_VERSION moto[server]==$MOTO_VERSION"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # host port seconds
    for _ in $(seq 1 $(($3 * 10))); do
        if (echo >"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "stand-ins: nothing listening on $1:$2 after $3 s" >&2
    return 1
}

install() {
    mkdir -p "$TOOLS"
    if [ "$(cat "$VENV/pinned" 2>/dev/null)" != "$PINNED" ]; then
        echo "stand-ins: installing $PINNED into $VENV"
        python3 -m venv "$VENV"
        # shellcheck disable=SC2086 # PINNED is a list of requirement specifiers
        "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINNED
        echo "$PINNED" >"$VENV/pinned"
    fi
    if [ ! -x "$TOOLS/bin/s3s-fs" ]; then
        echo "stand-ins: building s3s-fs $S3S_VERSION into $TOOLS/bin"
        # An unoptimised build: it compiles in a fraction of the time, and the tests' few
        # thousand requests do not notice.
        cargo install --quiet --locked --debug --root "$TOOLS" s3s-fs --version "$S3S_VERSION" --features binary
    fi
    install_chromium
}

# Debian's chromium (and a font for its text), once; a no-op when already there.
install_chromium() {
    [ -x /usr/bin/chromium ] && return 0
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null; then
            echo "stand-ins: /usr/bin/chromium is missing and apt-get needs root; the report's browser test will be skipped" >&2
            return 0
        fi
        sudo="sudo"
    fi
    echo "stand-ins: installing chromium (apt-get)"
    mkdir -p "$TOOLS"
    local pkgs="chromium fonts-dejavu-core"
    # shellcheck disable=SC2086 # pkgs is a list of package names
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >"$TOOLS/apt.log" 2>&1; then
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >>"$TOOLS/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >>"$TOOLS/apt.log" 2>&1 ||
            { cat "$TOOLS/apt.log" >&2; echo "stand-ins: installing chromium failed" >&2; return 1; }
    fi
}

start() {
    install
    stop 2>/dev/null || true
    mkdir -p "$RUN"
    local moto_port s3_port s3_root
    moto_port=$(free_port)
    s3_port=$(free_port)
    s3_root="$RUN/s3"
    rm -rf "$s3_root" && mkdir -p "$s3_root"
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$RUN/moto.log" 2>&1 &
    echo $! >"$RUN/moto.pid"
    "$TOOLS/bin/s3s-fs" --host 127.0.0.1 --port "$s3_port" \
        --access-key cai-test --secret-key cai-test-secret "$s3_root" >"$RUN/s3s.log" 2>&1 &
    echo $! >"$RUN/s3s.pid"
    wait_port 127.0.0.1 "$moto_port" 30
    wait_port 127.0.0.1 "$s3_port" 30
    # Before any resource exists: Lambda without Docker (canned responses) and Step
    # Functions executing definitions. Resources made earlier would be invisible after it.
    curl -sf -X POST "http://127.0.0.1:$moto_port/moto-api/config" \
        -H 'Content-Type: application/json' \
        -d '{"lambda":{"use_docker":false},"stepfunctions":{"execute_state_machine":true}}' >/dev/null
    cat >"$RUN/env" <<ENV
export CAI_TEST_MOTO_ENDPOINT=http://127.0.0.1:$moto_port
export CAI_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export CAI_TEST_S3_ROOT=$s3_root
export CAI_TEST_S3_ACCESS_KEY=cai-test
export CAI_TEST_S3_SECRET_KEY=cai-test-secret
export CAI_TEST_CARGO_LAMBDA=$VENV/bin/cargo-lambda
export CAI_TEST_S3S_FS=$TOOLS/bin/s3s-fs
export CAI_TEST_CHROMIUM=$(command -v chromium || true)
export PATH=$VENV/bin:\$PATH
ENV
    echo "stand-ins: moto on 127.0.0.1:$moto_port, s3s-fs on 127.0.0.1:$s3_port ($s3_root)"
}

stop() {
    for p in moto s3s; do
        if [ -f "$RUN/$p.pid" ]; then
            kill "$(cat "$RUN/$p.pid")" 2>/dev/null || true
            rm -f "$RUN/$p.pid"
        fi
    done
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
