@testable import Daemon
import Foundation
import Glibc
import Posix
import Testing

/// Run on this test process's own mappings, as medicd runs it on its own.
extension OwnPagesTests {
    @Suite("Cold pages")
    struct ColdPagesTests {
        /// The resident bytes of this process's private read-only file mappings, and of the
        /// mappings holding pages of their own (written: relocated pointers, globals, the heap).
        private static func resident() throws -> (clean: Int, written: Int, libraries: Int) {
            let smaps = try #require(WholeFile.text("/proc/self/smaps"))
            let chosen = ColdPages.clean(in: smaps)
            let clean = chosen.reduce(0) { $0 + $1.1 }
            let libraries = chosen.filter { $0.0.path.contains("/libc.so") }.reduce(0) { $0 + $1.1 }
            let anonymous = smaps.split(separator: "\n").filter { $0.hasPrefix("Anonymous:") }
                .reduce(0) { $0 + (Int($1.split(separator: " ")[1]) ?? 0) * 1024 }
            return (clean, anonymous, libraries)
        }

        @Test("only private read-only file mappings that nothing wrote are let go of")
        func selection() {
            let smaps = """
                55d0a0000000-55d0a0200000 r--p 00000000 fe:01 1311   /usr/local/sbin/medicd
                Size:               2048 kB
                Rss:                 512 kB
                Anonymous:             0 kB
                VmFlags: rd mr mw me rr
                55d0a0200000-55d0a2000000 r-xp 00200000 fe:01 1311   /usr/local/sbin/medicd
                Size:              30720 kB
                Rss:                8192 kB
                Anonymous:             0 kB
                VmFlags: rd ex mr mw me rr
                55d0a2000000-55d0a2100000 r--p 02000000 fe:01 1311   /usr/local/sbin/medicd
                Size:               1024 kB
                Rss:                1024 kB
                Anonymous:           900 kB
                VmFlags: rd mr mw me ac
                55d0a2100000-55d0a2200000 rw-p 02100000 fe:01 1311   /usr/local/sbin/medicd
                Size:               1024 kB
                Rss:                 100 kB
                Anonymous:            60 kB
                VmFlags: rd wr mr mw me ac
                7f0000000000-7f0000100000 r-xp 00028000 fe:01 2207   /usr/lib/x86_64-linux-gnu/libc.so.6
                Size:               1024 kB
                Rss:                 900 kB
                Anonymous:             0 kB
                VmFlags: rd ex mr mw me
                7f0000100000-7f0000110000 r-xp 00000000 fe:01 2208   /usr/lib/locked (deleted)
                Size:                 64 kB
                Rss:                  64 kB
                Anonymous:             0 kB
                VmFlags: rd ex mr mw me lo
                7f0000200000-7f0000300000 r--s 00000000 fe:01 4400   /var/lib/medic/audit.db-shm
                Size:               1024 kB
                Rss:                   8 kB
                Anonymous:             0 kB
                VmFlags: rd sh mr mw me
                7f0000300000-7f0000310000 r--p 00000000 00:00 0
                Size:                 64 kB
                Rss:                  64 kB
                Anonymous:            64 kB
                VmFlags: rd mr mw me
                7f0000400000-7f0000410000 r--p 00000000 fe:01 2209   /usr/lib/untouched.so
                Size:                 64 kB
                Rss:                   0 kB
                Anonymous:             0 kB
                VmFlags: rd mr mw me
                7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0      [vdso]
                Size:                  8 kB
                Rss:                   8 kB
                Anonymous:             0 kB
                VmFlags: rd ex mr mw me de sd
                """
            let chosen = ColdPages.clean(in: smaps)
            #expect(chosen.map(\.0.path) == ["/usr/local/sbin/medicd", "/usr/local/sbin/medicd", "/usr/lib/x86_64-linux-gnu/libc.so.6"])
            #expect(chosen.map(\.0.pages.lowerBound) == [0x55d0_a000_0000, 0x55d0_a020_0000, 0x7f00_0000_0000])
            #expect(chosen.map(\.1) == [512 << 10, 8192 << 10, 900 << 10])
        }

        @Test("start-up's file pages leave the resident set, written pages stay, and the code goes on running")
        func unmapsCleanPages() throws {
            // Touch a good deal of code and constants first, as start-up does.
            let text = try JSONEncoder().encode(["a": [1, 2, 3]])
            let before = try Self.resident()
            let released = ColdPages.unmap()
            let after = try Self.resident()
            #expect(released > 1 << 20, "\(released) bytes of clean file pages were resident")
            #expect(after.clean < before.clean / 2, "clean file pages resident: \(before.clean) before, \(after.clean) after")
            #expect(after.written >= before.written * 9 / 10, "pages of its own: \(before.written) before, \(after.written) after")
            // The shared libraries' mappings come after the binary's, beyond the first page of smaps.
            #expect(before.libraries > 0, "libc's clean pages were resident")
            #expect(after.libraries < before.libraries, "libc's clean pages resident: \(before.libraries) before, \(after.libraries) after")
            // What was let go of is mapped again from the page cache when it runs.
            let decoded = try JSONDecoder().decode([String: [Int]].self, from: text)
            #expect(decoded == ["a": [1, 2, 3]])
            #expect(try Self.resident().clean > after.clean)
        }
    }

    /// The constants the link placed in a writable segment: only their unchanged pages go.
    @Suite("Writable constants' pages")
    struct WritableConstantsTests {
        private static let present: UInt64 = 1 << 63
        private static let swapped: UInt64 = 1 << 62
        private static let fromFile: UInt64 = 1 << 61

        @Test("only runs of present pages backed by the file are chosen; changed and swapped pages stay")
        func runs() {
            let entries: [UInt64] = [
                Self.present | Self.fromFile, Self.present | Self.fromFile, // a run of two
                Self.present, // changed: the process's own copy
                Self.present | Self.fromFile, // a run of one
                0, // not mapped
                Self.swapped, // a changed page, swapped out
                Self.present | Self.fromFile | 0x1234, Self.present | Self.fromFile, // a run at the end
            ]
            let runs = ColdPages.unchangedRuns(entries, from: 0x10000, page: 0x1000)
            #expect(runs == [0x10000..<0x12000, 0x13000..<0x14000, 0x16000..<0x18000])
            #expect(ColdPages.unchangedRuns([], from: 0x10000, page: 0x1000).isEmpty)
            #expect(ColdPages.unchangedRuns([Self.present, Self.swapped], from: 0x10000, page: 0x1000).isEmpty)
        }

        /// Resident pages of `range` backed by the file, and resident pages of the process's own.
        private static func resident(_ range: Range<UInt>) throws -> (unchanged: Int, changed: Int) {
            let entries = try #require(ColdPages.pagemap(of: range))
            let unchanged = entries.filter { $0 & (Self.present | Self.fromFile) == Self.present | Self.fromFile }.count
            let changed = entries.filter { $0 & (Self.present | Self.fromFile) == Self.present }.count
            return (unchanged, changed)
        }

        @Test("this binary's constants are found in its writable segment, and their unchanged pages leave the resident set")
        func unmapsUnchangedConstants() throws {
            // Swift's writable `.rodata` puts the whole section in a writable segment, here as in medicd.
            let constants = try #require(BinaryPages.writableConstants)
            let writable = BinaryPages.segments().filter(\.writable)
            #expect(writable.contains { $0.pages.lowerBound <= constants.lowerBound && constants.upperBound <= $0.pages.upperBound })
            // Read every page of them, as start-up reads its literals and tables.
            let sum = Self.checksum(constants)
            let before = try Self.resident(constants)
            #expect(before.unchanged > 16, "\(before.unchanged) unchanged pages resident after reading them all (sum \(sum))")
            let released = ColdPages.unmapUnchanged(in: constants)
            let after = try Self.resident(constants)
            #expect(released >= before.unchanged * 4096 * 9 / 10, "\(released) bytes let go of, \(before.unchanged) pages were resident")
            #expect(after.unchanged < before.unchanged / 4, "unchanged pages resident: \(before.unchanged) before, \(after.unchanged) after")
            #expect(after.changed == before.changed, "the relocated pages stay: \(before.changed) before, \(after.changed) after")
            // What was let go of is read again from the file when it is used.
            #expect(Self.checksum(constants) == sum)
        }

        /// A checksum of the bytes of `range`, every one of its pages read.
        private static func checksum(_ range: Range<UInt>) -> UInt64 {
            let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: range.lowerBound), count: range.count)
            var sum: UInt64 = 0
            for (index, word) in bytes.bindMemory(to: UInt64.self).enumerated() {
                sum &+= word &* UInt64(index | 1)
            }
            return sum
        }
    }
}
