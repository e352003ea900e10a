import Engine
import Foundation
import MedicCore
import Playbooks
import Simulation

/// Parses a playbook written inline, as an operator would write it.
func playbook(_ yaml: String) throws -> Playbook {
    try PlaybookParser.parse(data: Array(yaml.utf8), file: "inline.yaml").get()
}

/// Runs a timeline (JSON lines, as `medic simulate` reads them) through the engine.
func simulate(_ playbooks: [Playbook], _ timeline: String, horizon: Duration = .seconds(3600), dryRun: Bool = false) throws -> [Simulator.Entry] {
    var simulator = Simulator(playbooks: playbooks, dryRun: dryRun)
    return simulator.run(try Timeline(jsonLines: timeline, base: Simulator.epoch), horizon: horizon)
}

extension Array where Element == Simulator.Entry {
    func of(_ kind: AuditRecord.Kind) -> [Simulator.Entry] { filter { $0.record.kind == kind } }
    func steps(_ name: String) -> [Simulator.Entry] { of(.stepIntent).filter { $0.record.step == name } }
    var messages: [String] { map(\.record.message) }
}

/// `count` crashes of `unit`, `every` apart, starting at `start` seconds.
func crashes(_ unit: String = "web@1.service", count: Int, every: Double, start: Double = 0) -> String {
    (0..<count).map { #"{"at": "\#(start + Double($0) * every)s", "target": "\#(unit)", "event": "crashed", "kind": "signal"}"# }.joined(separator: "\n")
}
