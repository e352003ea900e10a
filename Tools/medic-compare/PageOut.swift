import Foundation
import Glibc
import TestHost

/// Makes a process as if it had sat idle for an hour on a busy host: every page of its files
/// (its code, read-only data, the ICU data) is paged out of it (process_madvise MADV_PAGEOUT,
/// through Python's ctypes: Swift cannot call the variadic syscall()), then the clean page
/// cache is dropped, so its next instructions are read from disk again.
enum PageOut {
    static let script = """
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        pid = int(sys.argv[1])
        class iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        ranges = []
        for line in open(f"/proc/{pid}/maps"):
            fields = line.split()
            if len(fields) >= 6 and fields[5].startswith("/"):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append(iovec(start, end - start))
        pidfd = libc.syscall(434, ctypes.c_int(pid), ctypes.c_uint(0))
        if pidfd < 0:
            sys.exit("pidfd_open: errno %d" % ctypes.get_errno())
        for i in range(0, len(ranges), 512):
            chunk = ranges[i:i + 512]
            if libc.syscall(440, ctypes.c_int(pidfd), (iovec * len(chunk))(*chunk), ctypes.c_size_t(len(chunk)), ctypes.c_int(21), ctypes.c_uint(0)) < 0:
                sys.exit("process_madvise: errno %d" % ctypes.get_errno())
        open("/proc/sys/vm/drop_caches", "w").write("1")
        """

    /// Pages `pid`'s file pages out; returns its resident memory before and after, in MiB.
    static func evict(_ pid: pid_t) throws -> (before: Double, after: Double) {
        let before = ProcessCost(pid: pid)?.residentMiB ?? 0
        _ = try runProgram("/usr/bin/python3", ["-c", script, String(pid)])
        return (before, ProcessCost(pid: pid)?.residentMiB ?? 0)
    }
}
