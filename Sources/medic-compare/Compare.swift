import Foundation
import Glibc
import TestHost

/// medic-compare: runs Medic beside the tools operators use today on real systemd test hosts
/// and prints one table per scenario. `--quick` is a small smoke run; `--only 1,3` runs some of
/// the scenarios. Exits non-zero if a contender failed to do its job.
@main
struct Compare {
    static func main() async {
        let arguments = CommandLine.arguments
        let quick = arguments.contains("--quick")
        let only = arguments.firstIndex(of: "--only").flatMap { arguments.dropFirst($0 + 1).first }
            .map { Set($0.split(separator: ",").compactMap { Int($0) }) } ?? Set(1...6)
        let products = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]) as NSString
        let medicd = products.deletingLastPathComponent + "/medicd"
        print(Machine.description)
        var failures: [String] = []
        do {
            let rounds = quick ? 3 : 20
            for (number, fault, what) in [(1, FaultScenario.Fault.crash, "kill -9 of"), (2, .hang, "SIGSTOP (a hang) of")] where only.contains(number) {
                let results = try FaultScenario(fault: fault, medicd: medicd, rounds: rounds).run()
                print("")
                print("\(number). \(what) a backend (a tiny C HTTP server that starts in ~2 ms), \(rounds) faults each; milliseconds, median / p99:")
                print(table(results))
                if fault == .hang { print("supervisord has no hang detection: a stopped process is RUNNING to it.") }
                for result in results where result.failures > 0 || result.serving.isEmpty {
                    failures.append("\(fault): \(result.contender) did not bring its backend back in \(result.failures) of \(rounds) faults")
                }
            }

            if only.contains(3) {
                let pool = PoolScenario(medicd: medicd, rounds: quick ? 1 : 5, setups: quick ? PoolScenario.setups.filter { $0.medic || $0.checks.parameters.contains("500ms") } : PoolScenario.setups)
                let results = try await pool.run()
                print("")
                print("3. Three backends behind HAProxy at \(PoolScenario.rate) requests/s, one of them faulted; \(pool.rounds) faults of each kind, median / p99 per fault.")
                print("   Every set-up runs at the same time on the same host, each with its own backends, HAProxy and load; HAProxy alone leaves the server dead.")
                print(poolTable(results))
                for result in results {
                    failures += result.failures.map { "\(result.fault) behind HAProxy: \(result.setup.name) (\(result.setup.checks)): \($0)" }
                }
            }

            if only.contains(4) {
                let leak = LeakScenario(medicd: medicd, rounds: quick ? 2 : 10)
                let results = try leak.run()
                print("")
                print("4. A backend leaking \(LeakScenario.leakMiBPerSecond) MiB/s, limit \(LeakScenario.limitMiB) MiB; \(leak.rounds) leaks each, milliseconds from its memory crossing the limit to a new backend serving, median / p99:")
                let medic = results.first { $0.contender == "Medic" }.flatMap { Spread($0.remedied) }
                print(Table(header: ["contender", "settings", "limit → serving again", "vs Medic"], rows: results.map { result in
                    let spread = Spread(result.remedied)
                    return [result.contender, result.settings, spread.map(figures) ?? "never",
                            result.contender == "Medic" ? "" : (spread.flatMap { peer in medic.map { String(format: "%.2f×", peer.median / $0.median) } } ?? "")]
                }).render())
                if !results.contains(where: { $0.contender == "systemd" }) {
                    print("systemd's MemoryMax= is not measured: this machine's test hosts have no memory controller in their cgroup2.")
                }
                print("supervisord has no memory check of its own (superlance's memmon is not packaged in Debian).")
                for result in results {
                    failures += result.failures.map { "memory leak: \(result.contender): \($0)" }
                }
            }

            if only.contains(5) {
                let agent = AgentCost(medicd: medicd, unitCounts: quick ? [10, 100] : [10, 100, 1000], idle: .seconds(quick ? 5 : 10))
                let results = try agent.run()
                print("")
                print("5. Each agent's cost watching N idle services, all three side by side as units of one test host; each service a `sleep infinity` with a memory limit,")
                print("   looked at every \(AgentCost.interval) s (medicd's default sampling, monit `set daemon \(AgentCost.interval)`); supervisord runs N programs of its own. Idle CPU over \(Int(agent.idle.seconds)) s:")
                print(Table(header: ["services", "agent", "exec → READY=1", "resident memory", "of it anonymous", "CPU (share of one core)"], rows: results.map {
                    [String($0.units), $0.agent, $0.startup.map { String(format: "%.0f ms", $0.milliseconds) } ?? "", String(format: "%.1f MiB", $0.residentMiB),
                     String(format: "%.1f MiB", $0.anonymousMiB), String(format: "%.3f%%", $0.cpuShare * 100)]
                }).render())
            }
            if only.contains(6) {
                print("")
                print("6. Medic's own throughput (medic-bench\(quick ? " --quick" : ""), built as medic-compare is):")
                let bench = try ChildProcess(products.deletingLastPathComponent + "/medic-bench", quick ? ["--quick"] : [], logPath: NSTemporaryDirectory() + "medic-bench-\(getpid()).log")
                defer { try? FileManager.default.removeItem(atPath: bench.logPath) }
                let status = bench.waitForExit(timeout: .seconds(300))
                let lines = bench.output.split(separator: "\n").filter { !$0.hasPrefix("machine:") }
                print(Table(header: ["figure", "measured"], rows: lines.map { line in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    return parts.count == 2 ? [String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)] : ["", String(line)]
                }).render())
                if status != 0 { failures.append("medic-bench exited with \(status.map(String.init) ?? "no status after 300 s")") }
            }
        } catch {
            failures.append("\(error)")
        }
        for failure in failures { FileHandle.standardError.write(Data("medic-compare: FAILED: \(failure)\n".utf8)) }
        exit(failures.isEmpty ? 0 : 1)
    }

    /// One row per set-up and fault: requests noticed, of them failed, time out of rotation,
    /// and how many times more requests were noticed than with Medic.
    static func poolTable(_ results: [PoolScenario.Result]) -> String {
        Table(header: ["fault", "contender", "HAProxy checks", "failed or > 1 s", "of them failed", "fault → out of rotation (ms)", "vs Medic"], rows: results.map { result in
            let medic = results.first { $0.fault == result.fault && $0.setup.medic }.flatMap { Spread($0.affected) }
            let affected = Spread(result.affected)
            var ratio = ""
            if !result.setup.medic, let affected, let medic {
                ratio = medic.median > 0 ? String(format: "%.0f×", affected.median / medic.median) : (affected.median > 0 ? "Medic: 0" : "")
            }
            return [result.fault.what, result.setup.name, result.setup.checks.description, affected.map(counts) ?? "",
                    Spread(result.failed).map(counts) ?? "", Spread(result.outOfRotation).map(figures) ?? "never", ratio]
        }).render()
    }

    static func counts(_ spread: Spread) -> String {
        String(format: "%.0f / %.0f", spread.median, spread.p99)
    }

    /// Medic beside each peer, with how many times slower the peer serves again.
    static func table(_ results: [FaultScenario.Result]) -> String {
        let medic = results.first { $0.contender == "Medic" }.flatMap { Spread($0.serving) }
        return Table(header: ["contender", "settings", "fault → detected", "fault → serving again", "serving again vs Medic"], rows: results.map { result in
            let serving = Spread(result.serving)
            return [result.contender, result.settings, Spread(result.detected).map(figures) ?? "not reported", serving.map(figures) ?? "never",
                    result.contender == "Medic" ? "" : (serving.flatMap { peer in medic.map { String(format: "%.1f×", peer.median / $0.median) } } ?? "")]
        }).render()
    }

    static func figures(_ spread: Spread) -> String {
        String(format: spread.median < 10 ? "%.1f / %.1f" : "%.0f / %.0f", spread.median, spread.p99)
    }
}

/// The machine the figures come from.
enum Machine {
    static var description: String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        var name = utsname()
        uname(&name)
        let kernel = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu)), \(ProcessInfo.processInfo.physicalMemory >> 20) MiB, Linux \(kernel)"
    }
}

/// A plain-text table, columns padded to their widest cell.
struct Table {
    let header: [String]
    let rows: [[String]]

    func render() -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let line = { (cells: [String]) in
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
