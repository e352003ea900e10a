import ArgumentParser
import Foundation
import Glibc
import Posix
import TestHost

/// medic-compare: runs Medic beside the tools operators use today on real systemd test hosts
/// and prints one table per scenario. Exits non-zero if a contender failed to do its job.
@main
struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medic-compare",
        abstract: "Runs Medic beside systemd, monit, supervisord, HAProxy, Varnish and nginx on real systemd test hosts and prints one table per scenario.",
        discussion: """
            Without options it runs every scenario in full: about 24 minutes. It uses the medicd and \
            medic-bench beside its own binary. Exits non-zero if a contender failed to do its job.
            """)

    @Flag(help: "A small smoke run of each scenario.")
    var quick = false

    @Option(help: ArgumentHelp("The scenarios to run, by number, 1 to 10.", valueName: "n,n,..."))
    var only: Numbers?

    @Option(help: ArgumentHelp("Scenario 5's service counts (default 10,100,1000,10000).", valueName: "n,n,..."))
    var units: Numbers?

    @Option(help: ArgumentHelp("The seconds scenario 5 averages idle CPU over (default 10).", valueName: "seconds"))
    var idle: Int?

    @Option(help: ArgumentHelp("Scenario 10's units, a tenth and all of them killed (default 1000).", valueName: "n"))
    var burstUnits: Int?

    /// ArgumentParser's own, but for an interruption (Ctrl-C): it stops the test hosts and the
    /// programs it started before the tool ends.
    static func main() async {
        Interruption.stopEverythingOnSignals()
        do {
            let command = try parse()
            try await command.run()
        } catch {
            Interruption.exit { exit(withError: error) }
        }
        Interruption.exit { exit() }
    }

    func validate() throws {
        if let only, !only.values.allSatisfy((1...10).contains) {
            throw ValidationError("--only \(only): scenario numbers from 1 to 10, separated by commas")
        }
        if let units, !units.values.allSatisfy({ $0 > 0 }) {
            throw ValidationError("--units \(units): service counts above 0, separated by commas")
        }
        if let idle, idle <= 0 { throw ValidationError("--idle \(idle): seconds above 0") }
        if let burstUnits, burstUnits < 10 { throw ValidationError("--burst-units \(burstUnits): at least 10") }
    }

    /// A comma-separated list of numbers, as `--only 1,3` gives it.
    struct Numbers: ExpressibleByArgument, CustomStringConvertible {
        let values: [Int]
        var description: String { values.map(String.init).joined(separator: ",") }

        init?(argument: String) {
            let values = argument.split(separator: ",").map { Int($0) }
            guard !values.isEmpty, !values.contains(nil) else { return nil }
            self.values = values.compactMap { $0 }
        }
    }

    func run() async throws {
        let only = Set(self.only?.values ?? Array(1...10))
        let products = ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]) as NSString
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
                let counts = units?.values ?? (quick ? [10, 100] : [10, 100, 1000, 10000])
                let idle = self.idle ?? (quick ? 5 : 10)
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
                let total = burstUnits ?? (quick ? 100 : 1000)
                failures += try BurstScenario(medicd: medicd, total: total, bursts: [total / 10, total]).report()
            }
        } catch {
            failures.append("\(error)")
        }
        for failure in failures { FileHandle.standardError.write(Data("medic-compare: FAILED: \(failure)\n".utf8)) }
        if !failures.isEmpty { throw ExitCode.failure }
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
