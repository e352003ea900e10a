import Foundation
import Glibc

/// medic-compare: runs Medic beside the tools operators use today on real systemd test hosts
/// and prints one table. `--quick` is a small smoke run. Exits non-zero if a contender failed to
/// do its job.
@main
struct Compare {
    static func main() {
        let quick = CommandLine.arguments.contains("--quick")
        let products = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]) as NSString
        let medicd = products.deletingLastPathComponent + "/medicd"
        print(Machine.description)
        var failures: [String] = []
        do {
            let rounds = quick ? 3 : 20
            for (number, fault, what) in [(1, FaultScenario.Fault.crash, "kill -9 of"), (2, .hang, "SIGSTOP (a hang) of")] {
                let results = try FaultScenario(fault: fault, medicd: medicd, rounds: rounds).run()
                print("")
                print("\(number). \(what) a backend (a tiny C HTTP server that starts in ~2 ms), \(rounds) faults each; milliseconds, median / p99:")
                print(table(results))
                for result in results where result.failures > 0 || result.serving.isEmpty {
                    failures.append("\(fault): \(result.contender) did not bring its backend back in \(result.failures) of \(rounds) faults")
                }
            }
            print("supervisord has no hang detection: a stopped process is RUNNING to it.")

            let agent = AgentCost(medicd: medicd, unitCounts: quick ? [10, 100] : [10, 100, 1000], idle: .seconds(quick ? 6 : 30))
            let results = try agent.run()
            print("")
            print("5. medicd's cost, watching N idle units (each a target with a memory limit; sampled every 5 s, the default):")
            print(Table(header: ["units", "exec → READY=1", "resident memory", "of it anonymous", "CPU (share of one core)"], rows: results.map {
                [String($0.units), String(format: "%.0f ms", $0.startup.milliseconds), String(format: "%.1f MiB", $0.residentMiB),
                 String(format: "%.1f MiB", $0.anonymousMiB), String(format: "%.3f%%", $0.cpuShare * 100)]
            }).render())
        } catch {
            failures.append("\(error)")
        }
        for failure in failures { FileHandle.standardError.write(Data("medic-compare: FAILED: \(failure)\n".utf8)) }
        exit(failures.isEmpty ? 0 : 1)
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
