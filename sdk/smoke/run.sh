#!/bin/sh
# Smoke-tests the shipped cells under sdk/smoke/el2-stub.S (a stand-in for the kernel):
# builds them, boots each in QEMU and checks its console. Exits non-zero on any mismatch.
# Usage: sdk/smoke/run.sh   (from anywhere; needs qemu-system-aarch64 and aarch64-linux-gnu-*)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$workspace/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$workspace" && cargo build -q -p cellvisor-cells --target aarch64-unknown-none \
    --profile firmware --bins)
aarch64-linux-gnu-as "$here/el2-stub.S" -o "$work/stub.o"
aarch64-linux-gnu-ld -Ttext=0x48000000 -e _entry "$work/stub.o" -o "$work/stub.elf"

failures=0
# check CELL SECONDS PATTERN...: boots CELL for at most SECONDS, expects every PATTERN.
check() {
    cell=$1 seconds=$2
    shift 2
    aarch64-linux-gnu-objcopy -O binary "$target_dir/aarch64-unknown-none/firmware/$cell" \
        "$work/$cell.bin"
    timeout "$seconds" qemu-system-aarch64 -machine virt,virtualization=on,gic-version=3 \
        -cpu cortex-a72 -m 2G -nographic -no-reboot -kernel "$work/stub.elf" \
        -device "loader,file=$work/$cell.bin,addr=0x80000000,force-raw=on" \
        >"$work/$cell.log" 2>&1 || true
    for pattern in "$@"; do
        if ! grep -q -- "$pattern" "$work/$cell.log"; then
            echo "FAIL $cell: missing '$pattern'; console was:"
            sed 's/^/    /' "$work/$cell.log" | head -20
            failures=$((failures + 1))
            return
        fi
    done
    echo "ok   $cell"
}

check bench_boot 10 'BENCH boot_to_first_cell_ticks=[0-9]' 'BENCH counter_frequency_hz=62500000' \
    'STUB exit code 0000000000000000'
check crasher 10 'crasher: about to write to an unmapped address' \
    'STUB lower-EL fault ESR/IPA 0000000093' '^0000000010000000'
check ping 3 'ping: cell 0 vcpu 0 on core 0' 'ping 1' 'ping 5'
check pong 3 'pong: cell 0 vcpu 0 on core 0' 'pong 5'
[ "$failures" -eq 0 ]
