import CLinux
@testable import Daemon
import Foundation
import Glibc
import Logging
import Testing

@Suite("Heap release")
struct HeapReleaseTests {
    /// This process's resident bytes, as the kernel counts them.
    private static func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        return try #require(Int(statm[1])) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test("what a burst of work freed goes back to the kernel: the resident memory falls")
    func burstReleased() throws {
        // 40 MiB in small blocks, written to so that they are resident, then freed but for one
        // block above them, which keeps glibc from shrinking the heap by itself.
        let blocks = (0..<160_000).map { _ in malloc(256)! }
        for block in blocks { memset(block, 1, 256) }
        let above = malloc(256)
        defer { Glibc.free(above) }
        for block in blocks { Glibc.free(block) }
        let before = try Self.residentBytes()
        let freeBefore = HeapRelease.release(ifFreed: 1 << 20, logger: Logger(label: "test"))
        let after = try Self.residentBytes()
        #expect(freeBefore > 30 << 20, "the burst's blocks were free in the heap")
        #expect(before - after > 20 << 20, "resident \(before >> 20) MiB before, \(after >> 20) MiB after")
    }

    @Test("a large block keeps a mapping of its own even after a larger one was freed, and goes back to the kernel when freed")
    func largeBlocksMapped() throws {
        HeapRelease.configure()
        // glibc's own rule would now serve blocks up to 8 MiB from its arenas.
        let large = try #require(malloc(8 << 20))
        memset(large, 1, 8 << 20)
        Glibc.free(large)
        let mappedBefore = mallinfo2().hblkhd
        let block = try #require(malloc(1 << 20))
        memset(block, 1, 1 << 20)
        let mappedWith = mallinfo2().hblkhd
        Glibc.free(block)
        let mappedAfter = mallinfo2().hblkhd
        #expect(mappedWith >= mappedBefore + (1 << 20), "mapped blocks: \(mappedBefore) bytes before, \(mappedWith) with the 1 MiB block")
        #expect(mappedAfter + (1 << 20) <= mappedWith, "handed back when freed: \(mappedAfter) bytes mapped after")
    }
}

/// The one arena every thread shares once the heap is configured.
@Suite("Heap arenas")
struct HeapArenaTests {
    /// How many arenas glibc's heap has, as `malloc_info` lists them.
    private static func arenas() throws -> Int {
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        let stream = try #require(open_memstream(&buffer, &size))
        malloc_info(0, stream)
        fclose(stream)
        defer { Glibc.free(buffer) }
        let text = String(cString: try #require(buffer))
        return text.components(separatedBy: "<heap nr=").count - 1
    }

    /// Allocates on a thread of its own, says so, and holds the block until told to free it.
    private static func allocate(_ allocated: DispatchSemaphore, _ done: DispatchSemaphore) {
        let block = malloc(256)
        if let block { memset(block, 1, 256) }
        allocated.signal()
        done.wait()
        Glibc.free(block)
    }

    @Test("threads that allocate at the same moment share the arenas there are: none is added")
    func oneArena() throws {
        HeapRelease.configure()
        let before = try Self.arenas()
        let allocated = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let threads = 12
        for _ in 0..<threads {
            Thread(block: { Self.allocate(allocated, done) }).start()
        }
        for _ in 0..<threads { allocated.wait() }
        let during = try Self.arenas()
        for _ in 0..<threads { done.signal() }
        #expect(before >= 1)
        #expect(during == before, "arenas: \(before) before, \(during) with \(threads) threads allocating at once")
    }
}
