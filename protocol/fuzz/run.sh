#!/usr/bin/env bash
# Builds and runs every fuzz target of the workspace for SECONDS each, and
# prints one line per target: executions, exec/s, coverage (libFuzzer's
# `cov:`), crashes. A crash fails the script and names its artifact.
#
#   protocol/fuzz/run.sh [SECONDS_PER_TARGET]     (default 60; CI smoke: 20)
#
# Fuzz crates: protocol/fuzz, edge/fuzz, control-plane/fuzz (cargo-fuzz
# layout, excluded from the workspace). They share one target dir so the
# dependencies build once. The committed corpus (<crate>/fuzz/corpus/<t>)
# is read, never written: new inputs go to a scratch corpus under the
# target dir, which later runs of this script reuse.
#
# Every run appends one row per target to $CARGO_TARGET_DIR/ledger.tsv
# (target, seconds, executions, exec/s, cov, crashes, sanitizer, end time)
# and prints the ledger's per-target totals, so a session's campaigns add up.
#
# Environment: FUZZ_SANITIZER (address | none; default address),
# CARGO_TARGET_DIR (default <repo>/target/fuzz), FUZZ_TARGETS (a
# space-separated subset to run), FUZZ_NO_BUILD=1 (run the targets as last
# built: a long campaign then does not rebuild all of them for every edit
# to the crates they link).
#
# Limits: -rss_limit_mb=2048 and -malloc_limit_mb=512. The decoders bound
# themselves far below that (a bincode body may claim at most 16x its tier,
# 64 KiB for inputs under 4 KiB; frames 16 KiB; tokens 4 KiB), so an input
# that makes one allocate 512 MB at once is a bug, reported as a crash.
set -euo pipefail

seconds="${1:-60}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target/fuzz}"
# cargo-fuzz passes -Z flags; this lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin="$CARGO_TARGET_DIR/$triple/release"
scratch="$CARGO_TARGET_DIR/corpus"
logs="$CARGO_TARGET_DIR/logs"
mkdir -p "$scratch" "$logs"

crates=(protocol/fuzz edge/fuzz control-plane/fuzz)
started=$(date +%s)
ledger="$CARGO_TARGET_DIR/ledger.tsv"
[[ -f $ledger ]] || printf 'target\tseconds\texecs\texec_per_s\tcov\tcrashes\tsanitizer\tended_utc\n' >"$ledger"
for crate in "${crates[@]}"; do
    [[ ${FUZZ_NO_BUILD:-0} == 1 ]] && break
    # Target by target: a plain `cargo fuzz build` also builds the `seeds`
    # generator with coverage instrumentation but without libFuzzer, which
    # does not link.
    for t in $(cd "$repo/$crate" && cargo fuzz list); do
        [[ $t == seeds ]] && continue
        (cd "$repo/$crate" && cargo fuzz build -O --sanitizer "$sanitizer" "$t" >&2)
    done
done
built=$(date +%s)

rows=()
failed=()
for crate in "${crates[@]}"; do
    for t in $(cd "$repo/$crate" && cargo fuzz list); do
        # `seeds` is the corpus generator (a plain bin), not a fuzz target.
        [[ $t == seeds ]] && continue
        if [[ -n "${FUZZ_TARGETS:-}" && " $FUZZ_TARGETS " != *" $t "* ]]; then
            continue
        fi
        mkdir -p "$scratch/$t" "$repo/$crate/artifacts/$t" "$repo/$crate/corpus/$t"
        log="$logs/$t.log"
        status=0
        "$bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 \
            -print_final_stats=1 -artifact_prefix="$repo/$crate/artifacts/$t/" \
            "$scratch/$t" "$repo/$crate/corpus/$t" >"$log" 2>&1 || status=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
        crash=0
        if [[ $status -ne 0 ]]; then
            crash=1
            artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
            failed+=("$t: ${artifact:-see $log} (exit $status)")
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$seconds" "${execs:-0}" "${rate:-0}" \
            "${cov:-?}" "$crash" "$sanitizer" "$(date -u +%FT%TZ)" >>"$ledger"
        rows+=("$(printf '%-18s %12s %9s %7s %8s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$crash")")
    done
done

printf '\n%-18s %12s %9s %7s %8s\n' target executions exec/s cov crashes
printf '%s\n' "${rows[@]}"
echo
echo "ledger totals ($ledger):"
printf '%-18s %8s %12s %7s %8s\n' target seconds executions 'max cov' crashes
awk -F'\t' 'NR > 1 { s[$1] += $2; e[$1] += $3; c[$1] += $6; if ($5 + 0 > cov[$1]) cov[$1] = $5 }
    END { for (t in e) printf "%-18s %8d %12d %7d %8d\n", t, s[t], e[t], cov[t], c[t] }' "$ledger" | sort
echo "build $((built - started)) s, runs $(($(date +%s) - built)) s (${seconds} s per target, sanitizer $sanitizer)"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "CRASHES (reproduce: <target binary> <artifact>; logs in $logs):"
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
