# Sourced by the scripts: finds the Swift toolchain and checks that we are root.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0"): run as root: test hosts need namespaces, mounts and cgroups" >&2
    exit 1
fi
