# Shared by compare-nginx.sh and agree.sh; sourced, not run.
#
# nexus_prepare NAME: makes a temp dir WORK (removed on exit unless KEEP=1)
# and stops every process in PIDS on exit; builds the release binaries
# unless BUILD=0 and sets BIN; generates COUNT aliases with their nginx map
# and wrk script into WORK/data and a resolver token for a fresh SECRET
# into TOKEN. Expects ROOT, KEEP, BUILD and COUNT to be set.

nexus_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP == 1 ]]; then
        echo "files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

nexus_prepare() {
    local name="$1" b
    WORK="$(mktemp -d -t "nexus-$name.XXXXXX")"
    PIDS=()
    trap nexus_cleanup EXIT
    trap 'exit 130' INT TERM

    if [[ $BUILD == 1 ]]; then
        echo "building release binaries..." >&2
        (cd "$ROOT" && cargo build --release -p nexus-edge -p nexus-loadtest)
    fi
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
    for b in nexus-edge nexus-loadtest; do
        [[ -x "$BIN/$b" ]] || { echo "$BIN/$b not built (drop --no-build)" >&2; exit 1; }
    done

    SECRET="$name-$RANDOM$RANDOM$RANDOM"
    "$BIN/nexus-loadtest" gen --count "$COUNT" --out "$WORK/data" --secret "$SECRET" \
        >"$WORK/token" 2>"$WORK/gen.log"
    TOKEN="$(cat "$WORK/token")"
}
