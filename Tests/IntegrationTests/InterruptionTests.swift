import Foundation
import Glibc
import TestHost
import Testing

/// A tool interrupted (Ctrl-C, or a `kill`) stops everything it started, as its normal end does:
/// no test host's systemd and services left running, no mount, no cgroup.
@Suite("Interrupted tools", .serialized, .timeLimit(.minutes(5)))
struct InterruptionTests {
    /// Every process below `pid`, with its command name.
    private static func descendants(of pid: pid_t) -> [pid_t: String] {
        var found: [pid_t: String] = [:]
        var pending = [pid]
        while let parent = pending.popLast() {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(parent)/task")) ?? []
            for task in tasks {
                let children = (try? String(contentsOfFile: "/proc/\(parent)/task/\(task)/children", encoding: .utf8)) ?? ""
                for child in children.split(separator: " ").compactMap({ pid_t($0) }) where found[child] == nil {
                    let name = (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8)) ?? ""
                    found[child] = name.trimmingCharacters(in: .whitespacesAndNewlines)
                    pending.append(child)
                }
            }
        }
        return found
    }

    /// The test hosts' directories and mounts on this machine.
    private static func hostTraces() -> Set<String> {
        let directories = ((try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []).filter { $0.hasPrefix("medic-host-") }
        let mounts = ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "")
            .split(separator: "\n").filter { $0.contains("/medic-host-") }.map(String.init)
        let cgroups = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/unified")) ?? []).filter { $0.hasPrefix("testhost-") }
        return Set(directories + mounts + cgroups)
    }

    /// Starts `tool`, waits until a process named `running` runs below it, interrupts it with
    /// `signal`, and checks that it ended as the signal would end it, leaving nothing behind.
    private static func interrupt(_ tool: String, _ arguments: [String], once running: String, with signal: Int32) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let before = Self.hostTraces()
        let run = try ChildProcess(Paths.products + "/" + tool, arguments, logPath: dir + "/out")
        var started: [pid_t: String] = [:]
        let deadline = ContinuousClock.now + .seconds(120)
        while !started.values.contains(running), run.isRunning, ContinuousClock.now < deadline {
            usleep(50_000)
            started = Self.descendants(of: run.pid)
        }
        try #require(started.values.contains(running), "no \(running) under \(tool): \(started.values.sorted()); \(run.output)")
        #expect(started.values.contains("systemd"), "a test host runs: \(started.values.sorted())")
        started = Self.descendants(of: run.pid)
        run.signal(signal)
        let status = run.waitForExit(timeout: .seconds(60))
        #expect(status == 128 + signal, "\(tool) ended with \(status.map(String.init) ?? "nothing yet"): \(run.output)")
        let left = started.filter { kill($0.key, 0) == 0 }
        #expect(left.isEmpty, "still running: \(left)")
        let traces = Self.hostTraces().subtracting(before)
        #expect(traces.isEmpty, "left behind: \(traces.sorted())")
        Self.remove(left.keys, traces)
    }

    /// What a failed interruption left: each process killed by its PID, each mount, cgroup
    /// and directory removed.
    private static func remove(_ processes: Dictionary<pid_t, String>.Keys, _ traces: Set<String>) {
        for pid in processes { kill(pid, SIGKILL) }
        usleep(500_000)
        for trace in traces where trace.contains(" ") {
            let fields = trace.split(separator: " ")
            if fields.count > 4 { umount2(String(fields[4]), Int32(MNT_DETACH)) }
        }
        for trace in traces where !trace.contains(" ") {
            if trace.hasPrefix("testhost-") {
                let cgroup = "/sys/fs/cgroup/unified/" + trace
                let inner = (FileManager.default.subpaths(atPath: cgroup) ?? []).map { cgroup + "/" + $0 }
                for directory in inner.sorted(by: { $0.count > $1.count }) { rmdir(directory) }
                rmdir(cgroup)
            } else {
                try? FileManager.default.removeItem(atPath: "/tmp/" + trace)
            }
        }
    }

    @Test("Ctrl-C during the demo stops its test host, its backend and medicd")
    func demo() throws {
        try Self.interrupt("medic-demo", [], once: "medicd", with: SIGINT)
    }

    @Test("a kill of medic-compare stops its test host, HAProxy and medicd")
    func compare() throws {
        try Self.interrupt("medic-compare", ["--quick", "--only", "3"], once: "haproxy", with: SIGTERM)
    }
}
