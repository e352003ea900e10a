import Foundation
import Glibc
import Posix

/// medic-compare: runs Medic beside the tools operators use today on real systemd test hosts
/// and prints one table per scenario. `--quick` is a small smoke run; `--only 1,3` runs some of
/// the scenarios; `--units 100,1000` sets the service counts of scenario 5, `--burst-units 1000`
/// the units of scenario 10, `--idle 60` how many seconds scenario 5 averages idle CPU over. Exits non-zero if a contender failed to do its job.
@main
struct Compare {
    static func main() async {
        let arguments = CommandLine.arguments
        let quick = arguments.contains("--quick")
        /// The value given after `flag`, if it is given.
        func option(_ flag: String) -> String? { arguments.firstIndex(of: flag).flatMap { arguments.dropFirst($0 + 1).first } }
        let only = option("--only")
            .map { Set($0.split(separator: ",").compactMap { Int($0) }) } ?? Set(1...10)
        let products = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]) as NSString
        let medicd = products.deletingLastPathComponent + "/medicd"
        print(Machine.description)
        var failures: [String] = []
        do {
            for (number, fault) in [(1, FaultScenario.Fault.crash), (2, .hang)] where only.contains(number) {
                failures += try FaultScenario(fault: fault, medicd: medicd, rounds: quick ? 3 : 20).report(number: number)
            }
            if only.contains(3) {
                let setups = quick ? PoolScenario.setups.filter { $0.medic || $0.checks.parameters.contains("500ms") } : PoolScenario.setups
                failures += try await PoolScenario(medicd: medicd, rounds: quick ? 1 : 5, setups: setups).report()
            }
            if only.contains(4) {
                failures += try LeakScenario(medicd: medicd, rounds: quick ? 2 : 10).report()
            }
            if only.contains(5) {
                let counts = option("--units")
                    .map { $0.split(separator: ",").compactMap { Int($0) } } ?? (quick ? [10, 100] : [10, 100, 1000, 10000])
                let idle = option("--idle").flatMap { Int($0) } ?? (quick ? 5 : 10)
                try AgentCost(medicd: medicd, unitCounts: counts, idle: .seconds(idle)).report()
            }
            if only.contains(6) {
                failures += try Throughput(bench: products.deletingLastPathComponent + "/medic-bench", quick: quick).report()
            }
            if only.contains(7) {
                failures += try GuardScenario(medicd: medicd, rounds: quick ? 1 : 5).report()
            }
            if only.contains(8) {
                failures += try await FleetScenario(medicd: medicd, rounds: quick ? 1 : 5, simulated: quick ? 100 : 1000).report()
            }
            if only.contains(9) {
                let setups = quick ? FrontScenario.setups.filter { $0.medic || $0.retry } : FrontScenario.setups
                failures += try await FrontScenario(medicd: medicd, rounds: quick ? 1 : 5, setups: setups).report()
            }
            if only.contains(10) {
                let total = option("--burst-units").flatMap { Int($0) } ?? (quick ? 100 : 1000)
                failures += try BurstScenario(medicd: medicd, total: total, bursts: [total / 10, total]).report()
            }
        } catch {
            failures.append("\(error)")
        }
        for failure in failures { FileHandle.standardError.write(Data("medic-compare: FAILED: \(failure)\n".utf8)) }
        exit(failures.isEmpty ? 0 : 1)
    }
}

/// The machine the figures come from.
enum Machine {
    static var description: String {
        let cpu = WholeFile.text("/proc/cpuinfo")?.split(separator: "\n")
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
