#!/bin/sh
# /init of the Cellvisor guest initramfs (built by `cargo xtask guest-images`).
#
# Checks that a Linux guest sees the machine it was given, prints one verdict line, and
# powers off. The expectations come from the kernel command line:
#   cellvisor.expect_cpus=N       number of CPUs `nproc` must report
#   cellvisor.expect_mem_mib=M    RAM given to the guest; MemTotal must be 75..100 % of it
# Output (tests match these lines):
#   init: reached
#   guest-check: nproc=<n> mem_kib=<m> console=ok timer=ok irqs=ok modules=ok verdict=PASS
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

echo "guest-check: nproc=$nproc_item mem_kib=$mem_item console=$console timer=$timer irqs=$irqs modules=$modules verdict=$verdict"

# Isolation probe: with `cellvisor.probe=<address>` on the command line, read a physical
# address outside this guest's description. Under Cellvisor the access is a stage-2 fault
# and the cell's fault policy applies, so the second line never prints.
probe=$(parameter probe)
if [ -n "$probe" ]; then
    echo "guest-probe: reading $probe"
    busybox devmem "$probe" 32
    echo "guest-probe: UNEXPECTED: read $probe without a fault"
fi
# With `cellvisor.reboot=1`, reset instead of powering off (PSCI SYSTEM_RESET: under
# Cellvisor the cell restarts from its pristine image).
if [ "$(parameter reboot)" = 1 ]; then
    reboot -f
fi
poweroff -f
