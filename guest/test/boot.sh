#!/bin/sh
# Boots airlock-init as PID 1 in a QEMU microvm and runs the client suite over the
# virtio-serial port. Usage: boot.sh AGENT CLIENT KERNEL [ROOT_IMAGE] [TESTS...]
# Without ROOT_IMAGE the agent stays in the initramfs (only hello/shutdown make sense).
set -u
AGENT=$1 CLIENT=$2 KERNEL=$3 ROOT=${4:-}
shift 3; [ $# -gt 0 ] && shift
TESTS=${*:-hello}
T=$(mktemp -d /tmp/airlock-boot.XXXXXX)
QPID=
trap '[ -n "$QPID" ] && kill $QPID 2>/dev/null; rm -rf "$T"' EXIT
mkdir "$T/ir" && cp "$AGENT" "$T/ir/init"
(cd "$T/ir" && echo init | cpio -o -H newc --quiet >"$T/initramfs.cpio")
ACCEL=tcg CPU=max
[ "${USE_KVM:-}" = 1 ] && ACCEL=kvm CPU=host
APPEND="console=ttyS0 reboot=t panic=-1 pci=off quiet airlock.hostname=boottest"
DRIVES=
if [ -n "$ROOT" ]; then
    truncate -s 256M "$T/layer.ext4" && mkfs.ext4 -q -F "$T/layer.ext4"
    APPEND="$APPEND airlock.root=/dev/vda airlock.layer=/dev/vdb"
    DRIVES="-drive id=d0,file=$ROOT,format=raw,if=none,readonly=on -device virtio-blk-device,drive=d0
            -drive id=d1,file=$T/layer.ext4,format=raw,if=none -device virtio-blk-device,drive=d1"
fi
qemu-system-x86_64 -machine microvm,acpi=off,x-option-roms=off,rtc=on,isa-serial=on \
    -accel $ACCEL -cpu $CPU -smp 2 -m 512M -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$KERNEL" -initrd "$T/initramfs.cpio" -append "$APPEND" \
    -chardev file,id=con,path="$T/console.log" -serial chardev:con $DRIVES \
    -device virtio-serial-device,max_ports=2 \
    -chardev socket,id=agent,path="$T/agent.sock",server=on,wait=off \
    -device virtserialport,chardev=agent,name=airlock.agent &
QPID=$!
i=0
until grep -q '^airlock-init: ready' "$T/console.log" 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
    if [ $i -gt 1200 ] || ! kill -0 $QPID 2>/dev/null; then
        echo "FAIL no ready line"; cat "$T/console.log"; exit 1
    fi
done
grep '^airlock-init:' "$T/console.log"
fail=0
AIRLOCK_REMOTE=1 "$CLIENT" "$T/agent.sock" $TESTS shutdown || fail=1
i=0
while kill -0 $QPID 2>/dev/null; do
    sleep 0.1; i=$((i + 1))
    [ $i -gt 300 ] && { echo "FAIL VM did not power off"; fail=1; break; }
done
[ $fail -eq 0 ] || tail -30 "$T/console.log"
[ $fail -eq 0 ] && echo "PASS (boot)" || echo "FAILED (boot)"
exit $fail
