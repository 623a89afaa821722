#!/bin/sh
# Run pdrestore's fuzz targets, one after the other, for SECONDS each, keeping
# the corpus in fuzz/corpus/<target>/ (committed; minimise it with
# `cargo fuzz cmin TARGET` before committing a large one).
#
#   fuzz/run.sh SECONDS [TARGET...]     # default: every target
#   JOBS=2 fuzz/run.sh 600              # two targets at a time
#   FUZZ_ARGS=-max_len=4096 fuzz/run.sh 600 reply_assembly   # extra libFuzzer flags
#
# Each run's last libFuzzer status line (with its execution count) is
# printed and its full log kept in fuzz/logs/<target>.log. A crash stops the
# script with a non-zero status; the input is in fuzz/artifacts/<target>/.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); RUSTC_BOOTSTRAP=1 lets a
# stable toolchain take its nightly-only flags.
set -eu
cd "$(dirname "$0")/.."
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=${*:-"decode_message relay_chain frame_chunks reply_assembly capture snoop"}
jobs=${JOBS:-1}
export RUSTC_BOOTSTRAP=1
python3 fuzz/make_corpus.py >/dev/null
cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O
mkdir -p fuzz/logs

one() {
    t=$1
    mkdir -p "fuzz/corpus/$t"
    if cargo fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" \
        -print_final_stats=1 ${FUZZ_ARGS:-} >"fuzz/logs/$t.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/logs/$t.log" | grep -o '[0-9]*$' || true)
        echo "$t: ok, ${runs:-?} executions in ${secs}s; $(grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1)"
    else
        echo "$t: FAILED (see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
        tail -40 "fuzz/logs/$t.log"
        return 1
    fi
}

status=0
pids=""
for t in $targets; do
    one "$t" &
    pids="$pids $!"
    set -- $pids
    if [ "$#" -ge "$jobs" ]; then
        for p in $pids; do wait "$p" || status=1; done
        pids=""
    fi
done
for p in $pids; do wait "$p" || status=1; done
exit $status
