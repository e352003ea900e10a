@testable import Daemon
import Foundation
import Glibc
import Testing

/// The tests of medicd's own pages, one at a time: each reads, maps and drops this process's
/// pages and its binary's page cache, which the others measure.
@Suite("Own pages", .serialized)
struct OwnPagesTests {}

/// Run on this test process's own binary, as medicd runs it on its own.
extension OwnPagesTests {
    @Suite("Binary pages")
    struct BinaryPagesTests {
        private static let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""

        /// The mappings of the executable in /proc/self/smaps: start address and VmFlags.
        private static func mappings() throws -> [(start: UInt, flags: [Substring])] {
            var found: [(start: UInt, flags: [Substring])] = []
            var current: UInt?
            for line in try String(contentsOfFile: "/proc/self/smaps", encoding: .utf8).split(separator: "\n") {
                if line.hasPrefix("VmFlags:") {
                    if let start = current { found.append((start, line.dropFirst(8).split(separator: " "))) }
                    current = nil
                } else if line.split(separator: " ").count >= 5, line.contains("-"), !line.hasSuffix("kB") {
                    current = line.hasSuffix(" " + executable) ? UInt(line.prefix { $0 != "-" }, radix: 16) : nil
                }
            }
            return found
        }

        /// Pages of the executable file in the page cache, by mincore on a mapping nobody touches.
        private static func cachedPages() throws -> Int {
            let file = open(executable, O_RDONLY | O_CLOEXEC)
            try #require(file >= 0)
            defer { close(file) }
            var status = stat()
            try #require(fstat(file, &status) == 0)
            let size = Int(status.st_size)
            let mapping = try #require(mmap(nil, size, PROT_READ, MAP_SHARED, file, 0))
            try #require(mapping != MAP_FAILED)
            defer { munmap(mapping, size) }
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            var resident = [UInt8](repeating: 0, count: (size + page - 1) / page)
            try #require(mincore(mapping, size, &resident) == 0)
            return resident.reduce(0) { $0 + Int($1 & 1) }
        }

        @Test("the program's loadable segments are found where the kernel mapped its binary")
        func segmentsFound() throws {
            let segments = BinaryPages.segments()
            let starts = Set(try Self.mappings().map(\.start))
            #expect(segments.contains { !$0.writable }, "code, and read-only data (a segment of their own or with the code)")
            #expect(segments.contains { $0.writable }, "writable data")
            for segment in segments {
                #expect(starts.contains(segment.pages.lowerBound), "a mapping of \(Self.executable) starts at \(String(segment.pages.lowerBound, radix: 16))")
            }
        }

        @Test("afterwards the binary is read a page at a time, and its pages that nothing maps leave the page cache")
        func onlyWhatRunsStays() async throws {
            // The whole binary in the page cache, as after an install (just linked, it is dirty there).
            let contents = try #require(FileManager.default.contents(atPath: Self.executable))
            let before = try Self.cachedPages()
            await BinaryPages.mapOnlyWhatRuns()
            let after = try Self.cachedPages()
            #expect(before >= contents.count / Int(sysconf(Int32(_SC_PAGESIZE))) * 9 / 10, "\(before) pages cached after reading it whole")
            #expect(after < before / 2, "\(before) pages cached before, \(after) after")
            let mappings = try Self.mappings()
            #expect(mappings.count >= 2)
            for mapping in mappings {
                #expect(mapping.flags.contains("rr"), "no read-ahead for the mapping at \(String(mapping.start, radix: 16)): \(mapping.flags)")
            }
        }

        @Test("when idle's pages are let go of, the binary stays in the page cache, for the next incident to map without the disk")
        func coldPagesStayCached() throws {
            // Written out, as start-up leaves it, and read whole.
            let file = open(Self.executable, O_RDONLY | O_CLOEXEC)
            try #require(file >= 0)
            fdatasync(file)
            close(file)
            let contents = try #require(FileManager.default.contents(atPath: Self.executable))
            let pages = contents.count / Int(sysconf(Int32(_SC_PAGESIZE)))
            let before = try Self.cachedPages()
            ColdPages.unmap()
            let after = try Self.cachedPages()
            #expect(before >= pages * 9 / 10, "\(before) of \(pages) pages cached after reading it whole")
            #expect(after >= before * 9 / 10, "\(before) pages cached before, \(after) after")
        }
    }
}
