import Detectors
import Foundation
import Glibc
import Synchronization
import Testing

/// The keys woken so far, from the events' thread.
private final class Woken: Sendable {
    private let keys = Mutex<[String]>([])
    func add(_ key: String) { keys.withLock { $0.append(key) } }
    var all: [String] { keys.withLock { $0 } }

    func wait(for key: String, within timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if all.contains(key) { return true }
            usleep(20_000)
        }
        return all.contains(key)
    }
}

@Suite("Kernel events for limits: a PSI trigger and a changed file wake their key", .serialized)
struct LimitEventsTests {
    @Test("a file armed for changes wakes its key when written, and nothing else does; disarmed, it wakes no more")
    func fileChanges() throws {
        let directory = NSTemporaryDirectory() + "medic-events-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "high 0\n".write(toFile: directory + "/memory.events", atomically: false, encoding: .utf8)
        try "x\n".write(toFile: directory + "/other", atomically: false, encoding: .utf8)
        let woken = Woken()
        let events = LimitEvents { woken.add($0) }
        defer { events.close() }
        #expect(events.watchChanges(directory + "/memory.events", for: "web.service") == nil)
        #expect(events.isArmed("web.service"))
        #expect(events.watchChanges(directory + "/missing", for: "db.service")?.contains("No such file") == true)

        try "y\n".write(toFile: directory + "/other", atomically: false, encoding: .utf8)
        usleep(100_000)
        #expect(woken.all.isEmpty)
        try "high 1\n".write(toFile: directory + "/memory.events", atomically: false, encoding: .utf8)
        #expect(woken.wait(for: "web.service", within: .seconds(2)))

        events.disarm("web.service")
        #expect(!events.isArmed("web.service"))
        let before = woken.all.count
        try "high 2\n".write(toFile: directory + "/memory.events", atomically: false, encoding: .utf8)
        usleep(100_000)
        #expect(woken.all.count == before)
    }

    @Test("a PSI trigger on a cgroup wakes its key once the cgroup's tasks stall, and reports the cgroup's removal")
    func pressureTrigger() throws {
        let root = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.procs") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup"
        let group = root + "/medic-events-\(getpid())"
        try #require(mkdir(group, 0o755) == 0, "cannot make \(group)")
        var spinners: [pid_t] = []
        defer {
            for pid in spinners { kill(pid, SIGKILL) }
            usleep(100_000)
            rmdir(group)
        }
        let woken = Woken()
        let events = LimitEvents { woken.add($0) }
        defer { events.close() }
        #expect(events.armPressure(group + "/cpu.pressure", share: 0.3, for: "burner.service") == nil)
        #expect(events.armPressure(group + "/nothing.pressure", share: 0.3, for: "other.service")?.contains("cannot open") == true)
        usleep(300_000)
        #expect(woken.all.isEmpty, "no stall yet")

        // Two busy processes on one CPU, in the cgroup: one always waits for the other.
        for _ in 0..<2 {
            let spinner = Process()
            spinner.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            spinner.arguments = ["-c", "0", "yes"]
            spinner.standardOutput = FileHandle.nullDevice
            try spinner.run()
            spinners.append(spinner.processIdentifier)
            try "\(spinner.processIdentifier)\n".write(toFile: group + "/cgroup.procs", atomically: false, encoding: .utf8)
        }
        #expect(woken.wait(for: "burner.service", within: .seconds(5)), "\(woken.all)")

        for pid in spinners { kill(pid, SIGKILL) }
        spinners = []
        let count = woken.all.count
        usleep(100_000)
        rmdir(group)
        // The trigger goes with its cgroup: the key is woken, and disarmed to be armed again.
        let deadline = ContinuousClock.now + .seconds(2)
        while events.isArmed("burner.service") || woken.all.count == count, ContinuousClock.now < deadline { usleep(20_000) }
        #expect(!events.isArmed("burner.service"))
        #expect(woken.all.count > count)
    }
}
