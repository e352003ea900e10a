@testable import Daemon
import Glibc
import Logging
import Testing

@Suite("Heap release")
struct HeapReleaseTests {
    /// This process's resident bytes, as the kernel counts them.
    private static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = read(fd, &buffer, buffer.count)
        let fields = String(decoding: buffer[0..<max(0, count)], as: UTF8.self).split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test("what a burst of work freed goes back to the kernel: the resident memory falls")
    func burstReleased() {
        // 40 MiB in small blocks, written to so that they are resident, then freed but for one
        // block above them, which keeps glibc from shrinking the heap by itself.
        let blocks = (0..<160_000).map { _ in malloc(256)! }
        for block in blocks { memset(block, 1, 256) }
        let above = malloc(256)
        defer { Glibc.free(above) }
        for block in blocks { Glibc.free(block) }
        let before = Self.residentBytes()
        let freeBefore = HeapRelease.release(ifFreed: 1 << 20, logger: Logger(label: "test"))
        let after = Self.residentBytes()
        #expect(freeBefore > 30 << 20, "the burst's blocks were free in the heap")
        #expect(before - after > 20 << 20, "resident \(before >> 20) MiB before, \(after >> 20) MiB after")
    }
}
