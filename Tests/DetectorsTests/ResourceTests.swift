import Detectors
import Foundation
import Glibc
import MedicCore
import Posix
import Testing

private func at(_ seconds: Double) -> Timestamp {
    Timestamp(wallMicroseconds: Int64(seconds * 1e6), monotonicNanoseconds: Int64(seconds * 1e9))
}

private let leak = ResourceLimit(resource: .memory, comparison: .greater, threshold: 100, isPercentage: false, holdFor: .seconds(10))

@Suite("Resource metrics")
struct ResourceTests {
    @Test("a limit fires only once held for its duration; a spike does not")
    func hold() {
        var tracker = LimitTracker()
        #expect(tracker.evaluate(target: "a", limit: leak, value: 150, at: at(0)) == nil)
        #expect(tracker.evaluate(target: "a", limit: leak, value: 50, at: at(5)) == nil, "the spike ended")
        #expect(tracker.evaluate(target: "a", limit: leak, value: 150, at: at(6)) == nil)
        #expect(tracker.evaluate(target: "a", limit: leak, value: 150, at: at(12)) == nil, "held 6 s of 10")
        let fired = tracker.evaluate(target: "a", limit: leak, value: 150, at: at(16.5))
        #expect(fired?.kind == .limitExceeded(leak))
        #expect(tracker.evaluate(target: "a", limit: leak, value: 160, at: at(20)) == nil, "fires once")
    }

    @Test("a fired limit clears with hysteresis, not as soon as it dips under the threshold")
    func hysteresis() {
        var tracker = LimitTracker()
        let instant = ResourceLimit(resource: .fds, comparison: .greater, threshold: 100, isPercentage: false, holdFor: nil)
        #expect(tracker.evaluate(target: "a", limit: instant, value: 101, at: at(0))?.kind == .limitExceeded(instant))
        #expect(tracker.evaluate(target: "a", limit: instant, value: 95, at: at(1)) == nil, "within 10% of the threshold")
        #expect(tracker.evaluate(target: "a", limit: instant, value: 89, at: at(2))?.kind == .limitCleared(instant))
    }

    @Test("a unit's figures come from cgroup v2 files when they exist, from its processes otherwise")
    func unitSampler() throws {
        let root = NSTemporaryDirectory() + "medic-cgroup-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let group = root + "/unified/system.slice/web.service"
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: true)
        try "52428800\n".write(toFile: group + "/memory.current", atomically: true, encoding: .utf8)
        try "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n".write(toFile: group + "/cpu.stat", atomically: true, encoding: .utf8)
        try "7\n".write(toFile: group + "/pids.current", atomically: true, encoding: .utf8)
        try "\(getpid())\n".write(toFile: group + "/cgroup.procs", atomically: true, encoding: .utf8)
        try "some avg10=12.00 avg60=1.00 avg300=0.00 total=1500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n".write(toFile: group + "/memory.pressure", atomically: true, encoding: .utf8)
        try "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n".write(toFile: group + "/memory.events", atomically: true, encoding: .utf8)
        let sample = UnitSampler(unifiedRoot: root + "/unified", v1Root: root + "/v1").sample(controlGroup: "/system.slice/web.service")
        #expect(sample.memoryBytes == 52_428_800)
        #expect(sample.cpuSeconds == 2.5)
        #expect(sample.tasks == 7)
        #expect(sample.sources["memory"] == "cgroup2")
        #expect(sample.stalls[.memory] == 1.5)
        #expect(sample.pressures[.memory] == 0.12)
        #expect(sample.oomKills == 1)
        #expect((sample.fds ?? 0) > 0, "this test process has open files")
        #expect(sample.fdLimit.map { $0 > 0 } == true)

        try FileManager.default.removeItem(atPath: group + "/memory.current")
        try FileManager.default.removeItem(atPath: group + "/cpu.stat")
        let fallback = UnitSampler(unifiedRoot: root + "/unified", v1Root: root + "/v1").sample(controlGroup: "/system.slice/web.service")
        #expect(fallback.sources["memory"] == "proc")
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        let rss = Double(statm[1])! * Double(sysconf(Int32(_SC_PAGESIZE)))
        #expect(abs((fallback.memoryBytes ?? 0) - rss) < rss * 0.2, "RSS of the processes, as /proc says")
        #expect(fallback.sources["cpu"] == "proc")

        // Only the figures asked for; and a root that says it has no memory controller is not
        // asked for memory.current, whatever a file there says.
        try "cpu pids\n".write(toFile: root + "/unified/cgroup.controllers", atomically: true, encoding: .utf8)
        try "52428800\n".write(toFile: group + "/memory.current", atomically: true, encoding: .utf8)
        let memoryOnly = UnitSampler(unifiedRoot: root + "/unified", v1Root: root + "/v1").sample(controlGroup: "/system.slice/web.service", figures: [.memory])
        #expect(memoryOnly.sources == ["memory": "proc"])
        #expect(memoryOnly.cpuSeconds == nil && memoryOnly.tasks == nil && memoryOnly.fds == nil && memoryOnly.stalls.isEmpty && memoryOnly.pressures.isEmpty)
    }

    @Test("memory without a memory controller is every process's resident pages: each pid of cgroup.procs, one that exited skipped")
    func processesSummed() throws {
        let root = NSTemporaryDirectory() + "medic-procs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let group = root + "/unified/system.slice/web.service"
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: true)
        try "cpu pids\n".write(toFile: root + "/unified/cgroup.controllers", atomically: true, encoding: .utf8)
        // 300 exited between the two reads: it has no statm.
        try "100\n200\n300\n".write(toFile: group + "/cgroup.procs", atomically: true, encoding: .utf8)
        for (pid, statm) in [(100, "52000 1200 300 10 0 400 0\n"), (200, "9000 20 15 1 0 12 0\n")] {
            try FileManager.default.createDirectory(atPath: root + "/proc/\(pid)", withIntermediateDirectories: true)
            try statm.write(toFile: root + "/proc/\(pid)/statm", atomically: true, encoding: .utf8)
        }
        let sampler = UnitSampler(unifiedRoot: root + "/unified", v1Root: root + "/v1", procRoot: root + "/proc")
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        let sample = sampler.sample(controlGroup: "/system.slice/web.service", figures: [.memory])
        #expect(sample.memoryBytes == 1220 * page)
        #expect(sample.sources == ["memory": "proc"])

        // The next round reads the same files again, fresh: a process grew, one more started.
        try "52000 5000 300 10 0 400 0\n".write(toFile: root + "/proc/100/statm", atomically: false, encoding: .utf8)
        try "100\n200\n".write(toFile: group + "/cgroup.procs", atomically: false, encoding: .utf8)
        sampler.files.endRound()
        #expect(sampler.sample(controlGroup: "/system.slice/web.service", figures: [.memory]).memoryBytes == 5020 * page)

        // A cgroup with no process has no figure from its processes.
        try "".write(toFile: group + "/cgroup.procs", atomically: false, encoding: .utf8)
        #expect(sampler.sample(controlGroup: "/system.slice/web.service", figures: [.memory]).memoryBytes == nil)
    }

    @Test("a real cgroup's files stay open between rounds and read fresh each time; unread ones are closed, a removed cgroup reads as gone")
    func filesKeptOpen() throws {
        let name = "/medic-files-\(getpid())"
        let root = UnitSampler.defaultUnifiedRoot
        try FileManager.default.createDirectory(atPath: root + name, withIntermediateDirectories: false)
        defer { rmdir(root + name) }
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { if sleeper.isRunning { kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() } }
        try "\(sleeper.processIdentifier)\n".write(toFile: root + name + "/cgroup.procs", atomically: false, encoding: .utf8)

        let sampler = UnitSampler(unifiedRoot: root)
        #expect((sampler.sample(controlGroup: name, figures: [.fds]).fds ?? 0) > 0, "sleep has its standard files open")
        #expect(sampler.files.openCount == 1, "cgroup.procs is kept open")
        sampler.files.endRound()

        kill(sleeper.processIdentifier, SIGKILL)
        sleeper.waitUntilExit()
        #expect(sampler.sample(controlGroup: name, figures: [.fds]).fds == nil, "the same descriptor reads the cgroup as it is now: empty")
        #expect(sampler.files.openCount == 1)
        sampler.files.endRound()

        sampler.files.endRound()
        #expect(sampler.files.openCount == 0, "not read for a round: closed")

        _ = sampler.sample(controlGroup: name, figures: [.fds])
        #expect(sampler.files.openCount == 1)
        #expect(rmdir(root + name) == 0)
        #expect(sampler.sample(controlGroup: name, figures: [.fds]).fds == nil)
        #expect(sampler.files.openCount == 0, "a removed cgroup's file fails its read and is let go")
    }

    @Test("a unit with hundreds of processes is sampled whole: its cgroup.procs is longer than the page the kernel hands over in one read")
    func manyProcesses() throws {
        let name = "/medic-many-\(getpid())"
        let group = UnitSampler.defaultUnifiedRoot + name
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer { Self.removeGroup(group) }
        // A shell moves itself into the cgroup, then starts 1,200 sleeps there (its children):
        // more than a page of cgroup.procs even with PIDs of three digits.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "echo $$ > \(group)/cgroup.procs && for i in $(seq 1200); do sleep 60 & done; wait"]
        try shell.run()
        let deadline = ContinuousClock.now + .seconds(20)
        var pids: [Substring] = []
        repeat {
            usleep(50_000)
            pids = (WholeFile.text(group + "/cgroup.procs") ?? "").split(separator: "\n")
        } while pids.count < 1201 && ContinuousClock.now < deadline
        try #require(pids.count == 1201, "\(pids.count) processes in the cgroup")
        let text = try #require(WholeFile.text(group + "/cgroup.procs"))
        #expect(text.utf8.count > 4096, "cgroup.procs is \(text.utf8.count) bytes")

        // A sleep just forked holds the shell's descriptors until it runs: counted once they
        // all sleep, and their count holds still.
        var descriptors = Self.openFiles(of: pids)
        while ContinuousClock.now < deadline {
            usleep(200_000)
            let again = Self.openFiles(of: pids)
            if again == descriptors { break }
            descriptors = again
        }
        let sampler = UnitSampler(unifiedRoot: UnitSampler.defaultUnifiedRoot)
        // Read twice: by path, then again through the descriptor kept open.
        for _ in 0..<2 {
            let sample = sampler.sample(controlGroup: name, figures: [.fds])
            #expect(sample.fds == Double(descriptors), "open files of every process: \(descriptors)")
            sampler.files.endRound()
        }
    }

    /// How many files the processes have open, from /proc.
    private static func openFiles(of pids: [Substring]) -> Int {
        pids.map { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\($0)/fd").count) ?? 0 }.reduce(0, +)
    }

    /// Kills every process of a test's cgroup by its PID and removes the cgroup.
    static func removeGroup(_ group: String) {
        let deadline = ContinuousClock.now + .seconds(5)
        while let text = WholeFile.text(group + "/cgroup.procs"), !text.isEmpty, ContinuousClock.now < deadline {
            for pid in text.split(separator: "\n").compactMap({ pid_t($0) }) { kill(pid, SIGKILL) }
            usleep(20_000)
        }
        rmdir(group)
    }

    @Test("the host sampler agrees with values read independently")
    func hostSampler() throws {
        let sample = HostSampler().sample(mounts: ["/"])
        let total = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
        #expect(abs((sample.memoryTotal ?? 0) - total) < total * 0.01)
        let attributes = try FileManager.default.attributesOfFileSystem(forPath: "/")
        let size = (attributes[.systemSize] as? NSNumber)?.doubleValue ?? 0
        let free = (attributes[.systemFreeSize] as? NSNumber)?.doubleValue ?? 0
        let used = 1 - free / size
        #expect(abs((sample.disks["/"]?.blocks ?? -1) - used) < 0.02)
        #expect((sample.cpuTotal ?? 0) > (sample.cpuBusy ?? 0))
        #expect((sample.fileHandles ?? 0) > 0)
    }
}
