import Foundation
import MedicCore

/// The host's pressure at a moment: PSI (`some avg10`) for cpu, memory and io as fractions, and
/// the 1-minute load average. Every observation carries it, so a playbook can tell a starving
/// service from a starving host (`not host.pressure.memory > 40%`).
public enum HostPressure {
    /// Reads `/proc/pressure/*` and `/proc/loadavg` under `procRoot` (tests pass fixture
    /// directories); a file the kernel does not provide is left out.
    public static func facts(procRoot: String = "/proc") -> [String: String] {
        var facts: [String: String] = [:]
        for resource in ["cpu", "memory", "io"] {
            if let text = readSmall("\(procRoot)/pressure/\(resource)"),
               let avg10 = someAverage10(text) {
                facts["host.pressure.\(resource)"] = String(avg10 / 100)
            }
        }
        if let text = readSmall("\(procRoot)/loadavg"),
           let first = text.split(separator: " ").first, Double(first) != nil {
            facts["host.load"] = String(first)
        }
        return facts
    }

    /// The `avg10` of the `some` line: `some avg10=2.98 avg60=13.76 avg300=13.34 total=…`.
    static func someAverage10(_ text: String) -> Double? {
        someField("avg10=", text)
    }

    /// The `total` of the `some` line (microseconds stalled so far), in seconds.
    static func someTotal(_ text: String) -> Double? {
        someField("total=", text).map { $0 / 1e6 }
    }

    private static func someField(_ name: String, _ text: String) -> Double? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("some ") }) else { return nil }
        for field in line.split(separator: " ") where field.hasPrefix(name) {
            return Double(field.dropFirst(name.count))
        }
        return nil
    }
}

extension Observation {
    /// This observation with the host's pressure at this moment among its facts, if it can
    /// trigger a playbook (a plain state change cannot). Every detector's observations pass
    /// through here: the unit watcher's, and those `DetectorSet` hands to the engine.
    public func withHostPressure() -> Observation {
        if case .stateChanged = kind { return self }
        var enriched = self
        enriched.facts.merge(HostPressure.facts()) { current, _ in current }
        return enriched
    }
}
