import Audit
import Detectors
import Engine
import Foundation
import Logging
import MedicCore
import Playbooks
import Posix

/// medic-bench: prints Medic's figures (engine throughput, audit write rate) on this machine.
/// Build it in release (`scripts/bench`); `--quick` runs a small smoke version.
@main
struct Bench {
    static func main() async throws {
        let quick = CommandLine.arguments.contains("--quick")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 20) MiB")
        try engineThroughput(observations: quick ? 10_000 : 200_000)
        try await auditThroughput(records: quick ? 200 : 2_000)
        try await auditGroupCommit(records: quick ? 2_000 : 50_000)
        try sampling(units: quick ? 100 : 1_000, rounds: quick ? 2 : 10)
    }

    /// The cost of sampling N units' memory, CPU and tasks from their cgroup files (a v2 layout on
    /// tmpfs, one process each), once a round.
    static func sampling(units: Int, rounds: Int) throws {
        let root = "/dev/shm/medic-bench-cgroups-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for i in 0..<units {
            let dir = "\(root)/system.slice/svc\(i).service"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try "\(1_000_000 + i)\n".write(toFile: dir + "/memory.current", atomically: false, encoding: .utf8)
            try "usage_usec \(i * 1000)\nuser_usec 0\nsystem_usec 0\n".write(toFile: dir + "/cpu.stat", atomically: false, encoding: .utf8)
            try "3\n".write(toFile: dir + "/pids.current", atomically: false, encoding: .utf8)
            try "\(getpid())\n".write(toFile: dir + "/cgroup.procs", atomically: false, encoding: .utf8)
        }
        let sampler = UnitSampler(unifiedRoot: root)
        let cpuBefore = processCPUSeconds()
        let start = ContinuousClock.now
        for _ in 0..<rounds {
            for i in 0..<units { _ = sampler.sample(controlGroup: "/system.slice/svc\(i).service", figures: [.memory, .cpu, .tasks]) }
            sampler.files.endRound()
        }
        let perRound = (processCPUSeconds() - cpuBefore) / Double(rounds)
        let wall = (ContinuousClock.now - start).seconds / Double(rounds)
        print(String(format: "sampling: %d units in %.1f ms of CPU (%.1f ms wall) per round = %.2f%% of one core at 1 Hz; resident memory %.1f MiB",
                     units, perRound * 1000, wall * 1000, perRound * 100, residentMiB()))
    }

    static func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    static func residentMiB() -> Double {
        let statm = WholeFile.text("/proc/self/statm")?.split(separator: " ") ?? []
        return (statm.count > 1 ? Double(statm[1]) ?? 0 : 0) * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }

    /// Observations matched per second against 100 playbooks, on one core.
    static func engineThroughput(observations count: Int) throws {
        let books = try (0..<100).map { i in
            try PlaybookParser.parse(data: Array("""
                playbook: web\(i)
                targets:
                  - unit: svc\(i)-*.service
                  - unit: api\(i).service
                on:
                  - when: crashed and not host.pressure.memory > 40%
                    do: [ restart, { verify: { healthy: within 20s } } ]
                  - when: memory > 1GiB for 1m
                    do: [ restart ]
                """.utf8), file: "bench\(i).yaml").get()
        }
        var core = EngineCore(playbooks: books)
        let base = Timestamp.now()
        let start = ContinuousClock.now
        var commands = 0
        for i in 0..<count {
            let target = i % 10 == 0 ? "svc\(i % 100)-\(i % 7).service" : "other\(i % 1000).service"
            commands += core.observe(Observation(
                target: target, kind: .stateChanged, time: base.adding(.microseconds(Int64(i))),
                facts: ["ActiveState": i % 2 == 0 ? "active" : "activating"], summary: "state")).count
        }
        let seconds = (ContinuousClock.now - start).seconds
        print(String(format: "engine: %d observations against 100 playbooks in %.3f s = %.0f observations/s on one core (%d commands)",
                     count, seconds, Double(count) / seconds, commands))
    }

    /// Durable audit appends per second (one record per transaction, synchronous=FULL).
    static func auditThroughput(records count: Int) async throws {
        let dir = NSTemporaryDirectory() + "medic-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        var latencies: [Double] = []
        let start = ContinuousClock.now
        for i in 0..<count {
            let t = ContinuousClock.now
            _ = try await store.append(AuditRecord(kind: .observation, target: "web.service", message: "record \(i)", details: ["Result": "signal"]))
            latencies.append((ContinuousClock.now - t).seconds * 1000)
        }
        let seconds = (ContinuousClock.now - start).seconds
        latencies.sort()
        print(String(format: "audit: %d durable appends in %.3f s = %.0f records/s; latency median %.3f ms, p99 %.3f ms",
                     count, seconds, Double(count) / seconds, latencies[count / 2], latencies[count * 99 / 100]))
    }

    /// Sustained durable records per second through the engine, which writes whatever queued
    /// while the last transaction was being made durable in the next one (group commit); and,
    /// meanwhile, how long a step's result takes from its completion to being durable.
    static func auditGroupCommit(records count: Int) async throws {
        let dir = NSTemporaryDirectory() + "medic-bench-group-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let engine = Engine(core: EngineCore(playbooks: []), runner: NoSteps(), audit: store, logger: Logger(label: "bench"))
        let start = ContinuousClock.now
        let latencies = await withTaskGroup(of: [Double].self) { group in
            for producer in 0..<4 {
                group.addTask {
                    for i in stride(from: producer, to: count, by: 4) {
                        await engine.handle(Observation(
                            target: "web\(i % 100).service", kind: .stateChanged, time: .now(), facts: ["ActiveState": "active"], summary: "record \(i)"))
                    }
                    return []
                }
            }
            group.addTask {
                // A step result every 5 ms, appended as the engine appends it, timed to durable.
                var times: [Double] = []
                while (try? store.lastSeq()) ?? 0 < Int64(count) {
                    let t = ContinuousClock.now
                    _ = try? await store.append(AuditRecord(kind: .stepResult, target: "web.service", step: "restart", message: "restart succeeded"))
                    times.append((ContinuousClock.now - t).seconds * 1000)
                    try? await Task.sleep(for: .milliseconds(5))
                }
                return times
            }
            var all: [Double] = []
            for await part in group { all += part }
            return all.sorted()
        }
        while try store.lastSeq() < Int64(count + latencies.count) { try await Task.sleep(for: .milliseconds(1)) }
        let seconds = (ContinuousClock.now - start).seconds
        let written = try store.lastSeq()
        print(String(format: "audit, group commit: %lld durable records in %.3f s = %.0f records/s sustained; a step's result durable after median %.3f ms, p99 %.3f ms (%d results)",
                     written, seconds, Double(written) / seconds, latencies[latencies.count / 2], latencies[latencies.count * 99 / 100], latencies.count))
    }
}

/// A runner for benchmarks that have no playbooks: never called.
struct NoSteps: StepRunner {
    func run(_ step: Step, context: StepContext) async -> StepOutcome { .failure("no steps in a benchmark") }
}
