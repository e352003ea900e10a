# Sourced by the scripts: finds the Swift toolchain and checks that we are root.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0"): run as root: test hosts need namespaces, mounts and cgroups" >&2
    exit 1
fi
# A release build as shipped: the Swift runtime linked in, and every function in a section of its
# own (without it swiftc puts a file's private functions and the parts of its async functions in
# one section), so that the link can place the functions medicd runs together (Package.swift,
# scripts/link-order).
# Every script builds release this way: other flags would rebuild everything. (Objects built
# before these flags keep their old layout: swiftc does not generate code again for a module
# whose IR is unchanged. Remove .build/release/*.build/*.o once.)
release_build() {
    swift build -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections "$@"
}
