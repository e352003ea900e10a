@testable import Detectors
import Synchronization
import Testing

@Suite("Figures kept while a unit's slice uses no CPU")
struct QuietCgroupsTests {
    /// Counts the reads of a figure, each giving the next number.
    final class Reads: Sendable {
        private let count = Mutex(0)
        func next() -> Double? { count.withLock { $0 += 1; return Double($0) } }
        var total: Int { count.withLock { $0 } }
    }

    /// A slice's CPU time, set by the test.
    final class SliceUsage: Sendable {
        let value = Mutex<Int64?>(10)
        func read(_ slice: String) -> Int64? { value.withLock { $0 } }
    }

    @Test("a unit's figure is read again when its slice's CPU time moved, when it is old, or when it had none; else kept")
    func keptWhileSliceIdle() {
        let quiet = QuietCgroups()
        let reads = Reads()
        let usage = SliceUsage()
        #expect(quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 1)
        quiet.endRound()
        #expect(quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 1, "the slice did not run: kept")
        #expect(quiet.figure(.tasks, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 2, "another figure is read once")
        quiet.endRound()
        usage.value.withLock { $0 = 11 }
        #expect(quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 3, "the slice ran: read again")
        #expect(quiet.figure(.tasks, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 4, "every figure of it")
        quiet.endRound()
        #expect(quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 3)
        quiet.endRound()
        usage.value.withLock { $0 = nil }
        #expect(quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 5, "no cpu.stat: read every round")
        quiet.endRound()
        #expect(quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read, read: reads.next) == 6)
        #expect(reads.total == 6)

        let aged = QuietCgroups(longest: .zero)
        let steady = SliceUsage()
        #expect(aged.figure(.memory, of: "/s.slice/a.service", usage: steady.read, read: reads.next) == 7)
        aged.endRound()
        #expect(aged.figure(.memory, of: "/s.slice/a.service", usage: steady.read, read: reads.next) == 8, "older than kept for: read again")
    }

    @Test("a round forgets the units it did not sample, and a slice not looked at in the round before counts as moved")
    func forgetsUnsampled() {
        let quiet = QuietCgroups()
        let usage = SliceUsage()
        _ = quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read) { 1 }
        _ = quiet.figure(.memory, of: "/s.slice/b.service", usage: usage.read) { 1 }
        quiet.endRound()
        #expect(quiet.count == 2)
        _ = quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read) { 2 }
        quiet.endRound()
        #expect(quiet.count == 1, "b was not sampled in the second round")
        quiet.endRound()
        #expect(quiet.figure(.memory, of: "/s.slice/a.service", usage: usage.read) { 3 } == 3, "a round without a look at the slice: read again")
    }

    @Test("a unit's slice is the cgroup above it")
    func slices() {
        #expect(QuietCgroups.slice(of: "/system.slice/system-worker.slice/worker@1.service") == "/system.slice/system-worker.slice")
        #expect(QuietCgroups.slice(of: "/system.slice/nginx.service") == "/system.slice")
        #expect(QuietCgroups.slice(of: "/top") == "")
    }

    @Test("a cgroup right below the root is read every round: the root's CPU time moves by ticks")
    func rootNotKept() {
        let quiet = QuietCgroups()
        let reads = Reads()
        let usage = SliceUsage()
        #expect(quiet.figure(.memory, of: "/top.service", usage: usage.read, read: reads.next) == 1)
        quiet.endRound()
        #expect(quiet.figure(.memory, of: "/top.service", usage: usage.read, read: reads.next) == 2)
    }
}
