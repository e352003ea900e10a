import Foundation
import Glibc
import TestHost

/// Scenario 6: Medic's own throughput, as medic-bench (built beside medic-compare) prints it:
/// the engine matching observations, the audit log's durable appends, the sampler.
struct Throughput {
    /// The medic-bench executable.
    let bench: String
    let quick: Bool

    /// Runs medic-bench and prints its figures as a table; returns what failed.
    func report() throws -> [String] {
        print("")
        print("6. Medic's own throughput (medic-bench\(quick ? " --quick" : ""), built as medic-compare is):")
        let run = try ChildProcess(bench, quick ? ["--quick"] : [], logPath: NSTemporaryDirectory() + "medic-bench-\(getpid()).log")
        defer { try? FileManager.default.removeItem(atPath: run.logPath) }
        let status = run.waitForExit(timeout: .seconds(300))
        let lines = run.output.split(separator: "\n").filter { !$0.hasPrefix("machine:") }
        print(Table(header: ["figure", "measured"], rows: lines.map { line in
            let parts = line.split(separator: ":", maxSplits: 1)
            return parts.count == 2 ? [String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)] : ["", String(line)]
        }).render())
        return status == 0 ? [] : ["medic-bench exited with \(status.map(String.init) ?? "no status after 300 s")"]
    }
}
