/// The script that becomes PID 1 of a test host's fresh namespaces: it builds the host's root
/// (an overlay of this machine's / with the host's own "disk" as upper layer), mounts what
/// systemd needs, gives the host its identity and a minimal boot target, pivots into the new
/// root and execs systemd. Arguments: HOSTDIR NAME [PATH-TO-BIND…].
/// See shared/TESTHOST.md for why each piece is there.
let initScript = #"""
#!/bin/bash
set -eu
H="$1"; NAME="$2"; shift 2
R="$H/root"
mkdir -p "$H/disk/upper" "$H/disk/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$H/disk/upper,workdir=$H/disk/work" "$R"
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount --bind /dev "$R/dev"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount --bind "$H/console" "$R/dev/console"
mount --bind "$H/run" "$R/run"
mkdir -p "$R/usr/local/lib/systemd/system"
mount --bind "$H/units" "$R/usr/local/lib/systemd/system"
# Debian's tmpfiles.d wipes /tmp at boot: it must be the host's own, never the machine's.
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=1777 tmpfs "$R/var/tmp"
for p in "$@"; do mkdir -p "$R$p"; mount --bind "$p" "$R$p"; done
echo "$NAME" > "$R/etc/hostname"
if [ -e "$H/netns" ]; then rm -f "$R/etc/resolv.conf"; echo "nameserver 127.0.0.1" > "$R/etc/resolv.conf"; fi
if [ ! -s "$H/disk/upper/etc/machine-id" ]; then
    tr -d - < /proc/sys/kernel/random/uuid > "$R/etc/machine-id"
fi
S="$R/etc/systemd/system"
mkdir -p "$S" "$R/etc/systemd/journald.conf.d"
cat > "$S/medic-testhost.target" <<TARGET
[Unit]
Description=Medic test host
Requires=sysinit.target dbus.socket
Wants=dbus.service
After=sysinit.target dbus.socket
AllowIsolate=yes
TARGET
ln -sfn medic-testhost.target "$S/default.target"
for u in systemd-sysctl.service systemd-modules-load.service systemd-tmpfiles-clean.timer; do
    ln -sfn /dev/null "$S/$u"
done
printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/medic-testhost.conf"
cd "$R"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
export container="$NAME"
exec /lib/systemd/systemd --system
"""#
