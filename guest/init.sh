#!/bin/sh
# /init of the Cellvisor guest initramfs (built by `cargo xtask guest-images`).
#
# Checks that a Linux guest sees the machine it was given, prints one verdict line, and
# powers off (or starts a shell). The expectations come from the kernel command line:
#   cellvisor.expect_cpus=N       number of CPUs `nproc` must report
#   cellvisor.expect_mem_mib=M    RAM given to the guest; MemTotal must be 75..100 % of it
#   cellvisor.modem=DEV           talk to the native modem cell on this virtio-console port
#   cellvisor.shared=ADDR         ... and move blocks through the shared region at ADDR
#   cellvisor.shared_words=N      ... of N 32-bit words (default 256)
#   cellvisor.probe=ADDR          read ADDR, outside the guest's description (must fault)
#   cellvisor.shell=1             end in an interactive shell instead of powering off
#   cellvisor.bench=1             only run /bin/cvbench (guest benchmarks), then power off
#   cellvisor.load=SECONDS        run a CPU- and syscall-heavy load for that long
#   cellvisor.reboot=1            end with a reset instead of powering off
# Output (tests match these lines):
#   init: reached
#   guest-check: nproc=<n> mem_kib=<m> console=ok timer=ok irqs=ok modules=ok entropy=ok verdict=PASS
# or the same line with `<item>=FAIL(<detail>)` for each failing item and `verdict=FAIL`.

/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

echo "init: reached"

verdict=PASS
fail() {
    verdict=FAIL
}

# The value of `cellvisor.<name>=` on the kernel command line, empty if absent.
parameter() {
    for word in $(cat /proc/cmdline); do
        case "$word" in
            "cellvisor.$1="*) echo "${word#*=}" ;;
        esac
    done
}

# Waits up to 10 s for the device node $1 (virtio_console registers its port's tty from a
# work queue, after the module has loaded).
wait_for_node() {
    tries=0
    while [ ! -e "$1" ] && [ "$tries" -lt 100 ]; do
        sleep 0.1
        tries=$((tries + 1))
    done
}

# `modem COMMAND...`: sends one command line to the native modem cell on the virtio-console
# port ${MODEM_PORT:-/dev/hvc0} and prints its answer lines up to OK or ERROR. The port is
# set raw without echo on the open descriptor (the modem's answers must not be echoed back
# to it, and hvc ttys reset their settings on last close).
cat > /bin/modem <<'SCRIPT'
#!/bin/sh
exec 3<>"${MODEM_PORT:-/dev/hvc0}"
stty raw -echo <&3
printf '%s\n' "$*" >&3
while IFS= read -r -t 20 line <&3; do
    echo "$line"
    case "$line" in OK | ERROR*) break ;; esac
done
SCRIPT
chmod +x /bin/modem

# Modules, in dependency order (the list is written by the image builder).
modules=ok
if [ -f /lib/modules/load-order ]; then
    while read -r module; do
        [ -n "$module" ] || continue
        if ! insmod "/lib/modules/$module" 2>/dev/null; then
            modules="FAIL($module)"
            fail
        fi
    done < /lib/modules/load-order
fi

# Benchmarks: with `cellvisor.bench=1`, run the guest benchmark program (its first figure
# is the counter at its start: the time to boot to here) and power off. The same image runs
# natively and in a cell; `cargo xtask bench` compares the `BENCH guest_*` lines. With
# `cellvisor.bench_set=all,virtio` it also measures round trips to the modem cell over the
# virtio-console port, handed to it as descriptor 3.
if [ "$(parameter bench)" = 1 ]; then
    bench_set=$(parameter bench_set)
    bench_set=${bench_set:-all}
    case ",$bench_set," in
        *,virtio,*)
            wait_for_node /dev/hvc0
            exec 3<>/dev/hvc0
            stty raw -echo <&3
            ;;
    esac
    /bin/cvbench $(echo "$bench_set" | tr , ' ')
    poweroff -f
fi

# CPUs.
cpus=$(nproc)
expect_cpus=$(parameter expect_cpus)
nproc_item="$cpus"
if [ -z "$expect_cpus" ]; then
    nproc_item="$cpus(FAIL:no-cellvisor.expect_cpus)"
    fail
elif [ "$cpus" != "$expect_cpus" ]; then
    nproc_item="$cpus(FAIL:expected-$expect_cpus)"
    fail
fi

# Memory: the kernel keeps some for itself, so MemTotal is a little under what it was given.
mem_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
expect_mem_mib=$(parameter expect_mem_mib)
mem_item="$mem_kib"
if [ -z "$expect_mem_mib" ]; then
    mem_item="$mem_kib(FAIL:no-cellvisor.expect_mem_mib)"
    fail
else
    given_kib=$((expect_mem_mib * 1024))
    if [ "$mem_kib" -gt "$given_kib" ] || [ $((mem_kib * 4)) -lt $((given_kib * 3)) ]; then
        mem_item="$mem_kib(FAIL:expected-75-100%-of-$given_kib)"
        fail
    fi
fi

# Console: the PL011 must be the registered console.
if grep -q '^ttyAMA0' /proc/consoles; then
    console=ok
else
    console="FAIL($(awk '{ printf "%s,", $1 }' /proc/consoles))"
    fail
fi

# Timer: `sleep 1` measured with /proc/uptime (centiseconds), within 0.9 .. 3.0 s (the host
# may be busy; a timer that does not fire hangs here and the test times out).
uptime_centiseconds() {
    awk '{ printf "%d", $1 * 100 }' /proc/uptime
}
before=$(uptime_centiseconds)
sleep 1
after=$(uptime_centiseconds)
elapsed=$((after - before))
if [ "$elapsed" -ge 90 ] && [ "$elapsed" -le 300 ]; then
    timer=ok
else
    timer="FAIL(sleep-1-took-${elapsed}cs)"
    fail
fi

# Interrupts: the arch timer line has a nonzero count on every CPU.
irqs=$(awk '
    NR == 1 { cpus = NF; next }
    /arch_timer/ {
        found = 1
        for (i = 2; i <= cpus + 1; i++) if ($i + 0 == 0) zero = zero "cpu" (i - 2) ","
    }
    END {
        if (!found) print "FAIL(no-arch_timer-line)"
        else if (zero != "") print "FAIL(zero-on-" zero ")"
        else print "ok"
    }' /proc/interrupts)
[ "$irqs" = ok ] || fail

# Randomness: the kernel's random number generator was ready by the time /init runs, as it
# is when the device tree's `rng-seed` carried fresh randomness (Cellvisor fills it at every
# start of the guest; QEMU fills it for a native boot).
if dmesg | grep -q 'crng init done'; then
    entropy=ok
else
    entropy="FAIL(crng-not-ready)"
    fail
fi

echo "guest-check: nproc=$nproc_item mem_kib=$mem_item console=$console timer=$timer irqs=$irqs modules=$modules entropy=$entropy verdict=$verdict"

# Modem: with `cellvisor.modem=<device>` (the virtio-console port that the native `modem`
# cell answers on, through the `vconsole` device-model cell), ask it `AT` and `ATI`; with
# `cellvisor.shared=<address>` too, move a block of 32-bit words each way through the
# shared region (the modem fills it and Linux checks, then Linux fills it and the modem
# checks), comparing checksums c = (c * 31 + word) mod 2^32. Prints one line:
#   modem-check: at=ok ati=ok to-linux=ok from-linux=ok words=<n> verdict=PASS
modem=$(parameter modem)
if [ -n "$modem" ]; then
    modem_verdict=PASS
    wait_for_node "$modem"
    # One command line; its answer lines joined by `;`.
    ask() {
        MODEM_PORT="$modem" modem "$1" | tr '\n' ';'
    }
    checksum_of_words() { # base count: checksum of `count` words read with devmem
        sum=0
        index=0
        while [ "$index" -lt "$2" ]; do
            word=$(devmem $(($1 + index * 4)) 32)
            sum=$(((sum * 31 + word) & 0xffffffff))
            index=$((index + 1))
        done
        echo "$sum"
    }
    at=$(ask AT)
    [ "$at" = "OK;" ] && at=ok || { at="FAIL($at)"; modem_verdict=FAIL; }
    ati=$(ask ATI)
    [ "$ati" = "CELLVISOR MODEM 1;OK;" ] && ati=ok || { ati="FAIL($ati)"; modem_verdict=FAIL; }
    shared=$(parameter shared)
    words=$(parameter shared_words)
    words=${words:-256}
    to_linux=skipped
    from_linux=skipped
    if [ -n "$shared" ]; then
        filled=$(ask "FILL 7 $words")
        mine=$(checksum_of_words "$shared" "$words")
        if [ "$filled" = "SUM $mine;OK;" ]; then
            to_linux=ok
        else
            to_linux="FAIL(modem:$filled,linux:$mine)"
            modem_verdict=FAIL
        fi
        sum=0
        index=0
        while [ "$index" -lt "$words" ]; do
            word=$(((index * 2246822519 + 12345) & 0xffffffff))
            devmem $((shared + index * 4)) 32 "$word"
            sum=$(((sum * 31 + word) & 0xffffffff))
            index=$((index + 1))
        done
        theirs=$(ask "SUM $words")
        if [ "$theirs" = "SUM $sum;OK;" ]; then
            from_linux=ok
        else
            from_linux="FAIL(modem:$theirs,linux:$sum)"
            modem_verdict=FAIL
        fi
    fi
    echo "modem-check: at=$at ati=$ati to-linux=$to_linux from-linux=$from_linux words=$words verdict=$modem_verdict"
fi

# Load: with `cellvisor.load=<seconds>`, run a CPU- and syscall-heavy load (two processes
# forking, piping, mapping memory and computing) for that long before going on.
load=$(parameter load)
if [ -n "$load" ]; then
    echo "init: load for $load s"
    /bin/cvbench load "$load"
fi

# Isolation probe: with `cellvisor.probe=<address>` on the command line, read a physical
# address outside this guest's description. Under Cellvisor the access is a stage-2 fault
# and the cell's fault policy applies, so the second line never prints.
probe=$(parameter probe)
if [ -n "$probe" ]; then
    echo "guest-probe: reading $probe"
    busybox devmem "$probe" 32
    echo "guest-probe: UNEXPECTED: read $probe without a fault"
fi
# With `cellvisor.shell=1`, hand the console to an interactive shell (the demo system): its
# input is what is typed on the board's console while this cell has the focus (Ctrl-T n
# moves it between guest cells, Ctrl-T ? says where it is). `poweroff -f` stops this cell
# only; `reboot -f` restarts it.
if [ "$(parameter shell)" = 1 ]; then
    echo "init: starting a shell (try: modem ATI; Ctrl-T ? shows the console focus)"
    exec setsid cttyhack /bin/sh
fi
# With `cellvisor.reboot=1`, reset instead of powering off (PSCI SYSTEM_RESET: under
# Cellvisor the cell restarts from its pristine image).
if [ "$(parameter reboot)" = 1 ]; then
    reboot -f
fi
poweroff -f
