@testable import Detectors
import Foundation
import MedicCore
import Posix
import Testing

@Suite("Units skipped while their slice uses no CPU, on this machine's cgroup2")
struct QuietSlicesTests {
    /// Reads a slice's `usage_usec` from the kernel, counting the reads.
    final class SliceReads {
        let root: String
        private(set) var count = 0
        init(root: String) { self.root = root }

        func usage(_ slice: String) -> Double? {
            count += 1
            return KernelFiles().keyed(root + slice + "/cpu.stat", "usage_usec")
        }
    }

    @Test("a slice whose processes sleep is quiet from the second round, read once a round for all its units; a process that runs there, a refresh or no slice makes it not")
    func quietWhileSleeping() throws {
        let root = UnitSampler.defaultUnifiedRoot
        let slice = "/medic-quiet-\(getpid()).slice"
        let first = slice + "/idle@1.service", second = slice + "/idle@2.service"
        for group in [first, second] {
            try FileManager.default.createDirectory(atPath: root + group, withIntermediateDirectories: true)
        }
        defer {
            for group in [first, second] { ResourceTests.removeGroup(root + group) }
            rmdir(root + slice)
        }
        try Self.sleep(in: root + first)
        let reads = SliceReads(root: root)
        var quiet = QuietSlices()
        var now = ContinuousClock.now
        var isQuiet: Bool

        quiet.beginRound(at: now)
        isQuiet = quiet.isQuiet(first, usage: reads.usage)
        #expect(!isQuiet, "the first round reads every unit")
        isQuiet = quiet.isQuiet(second, usage: reads.usage)
        #expect(!isQuiet)
        #expect(reads.count == 1, "one read of the slice for both units")

        now += .seconds(5)
        quiet.beginRound(at: now)
        isQuiet = quiet.isQuiet(first, usage: reads.usage)
        #expect(isQuiet, "the sleep did not run: the slice's CPU time did not move")
        isQuiet = quiet.isQuiet(second, usage: reads.usage)
        #expect(isQuiet)
        #expect(reads.count == 2)

        // A process joins the second unit and runs there before it sleeps.
        try Self.sleep(in: root + second)
        now += .seconds(5)
        quiet.beginRound(at: now)
        isQuiet = quiet.isQuiet(first, usage: reads.usage)
        #expect(!isQuiet, "a process ran in the slice: every unit of it is read")
        now += .seconds(5)
        quiet.beginRound(at: now)
        isQuiet = quiet.isQuiet(second, usage: reads.usage)
        #expect(isQuiet, "both sleep now")

        now += QuietSlices.refreshEvery
        quiet.beginRound(at: now)
        isQuiet = quiet.isQuiet(first, usage: reads.usage)
        #expect(!isQuiet, "every unit is read again once a refresh is due")
        now += .seconds(5)
        quiet.beginRound(at: now)
        isQuiet = quiet.isQuiet(first, usage: reads.usage)
        #expect(isQuiet)

        // A round that skipped the slice: its figure is from two rounds ago, not the round before.
        now += .seconds(5)
        quiet.beginRound(at: now)
        now += .seconds(5)
        quiet.beginRound(at: now)
        isQuiet = quiet.isQuiet(first, usage: reads.usage)
        #expect(!isQuiet, "a slice not read in the round before is not trusted")

        isQuiet = quiet.isQuiet("/top.service", usage: reads.usage)
        #expect(!isQuiet, "a cgroup right below the root has no slice")
        isQuiet = quiet.isQuiet(slice + "/gone.service", usage: Self.unreadable)
        #expect(!isQuiet, "a slice without cpu.stat is never quiet")
    }

    @Test("only limits on figures that grow by running, and only above a threshold, are skipped while idle")
    func limitsThatHold() {
        let held = [
            Self.limit(.memory, .greater, 100), Self.limit(.cpu, .greater, 0.8), Self.limit(.tasks, .greaterOrEqual, 500),
            Self.limit(.fds, .greater, 0.9),
        ]
        let notHeld = [
            Self.limit(.memory, .less, 1), Self.limit(.cpu, .less, 0.01), Self.limit(.pressure(.memory), .greater, 0.2),
            Self.limit(.pressure(.io), .greater, 0.1),
        ]
        #expect(held.allSatisfy(QuietSlices.holdsWhileIdle))
        #expect(!notHeld.contains(where: QuietSlices.holdsWhileIdle), "a falling figure, or a task stalled on IO, changes without running")
    }

    private static func limit(_ resource: ResourceLimit.Resource, _ comparison: Comparison, _ threshold: Double) -> ResourceLimit {
        ResourceLimit(resource: resource, comparison: comparison, threshold: threshold, isPercentage: false, holdFor: nil)
    }

    private static func unreadable(_ slice: String) -> Double? { nil }

    /// Starts a `sleep` that moves itself into `group`, and waits until it sleeps there.
    private static func sleep(in group: String) throws {
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "echo $$ > \(group)/cgroup.procs && exec sleep 120"]
        try shell.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let pid = WholeFile.text(group + "/cgroup.procs")?.split(separator: "\n").first.flatMap { pid_t($0) }
            if let pid, WholeFile.text("/proc/\(pid)/comm") == "sleep\n", (WholeFile.text("/proc/\(pid)/stat") ?? "").contains(") S ") {
                // The kernel's CPU time of the cgroup is flushed lazily: let the exec settle.
                usleep(100_000)
                return
            }
            usleep(20_000)
        }
        throw POSIXError(.ETIMEDOUT)
    }
}
