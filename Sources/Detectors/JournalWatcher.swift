import Logging
import MedicCore
import Systemd

/// Matches the lines units write to the journal against the patterns playbooks name
/// (`journal "Too many open files"`): a match is an observation carrying the matched line. A
/// flood is reported at most once a second per (unit, pattern), with the lines suppressed counted.
public struct JournalWatcher: Sendable {
    /// Unit → the texts to look for in its lines.
    public let patterns: [String: [String]]
    private let directory: String?
    private let logger: Logger

    public init(patterns: [String: [String]], directory: String?, logger: Logger) {
        self.patterns = patterns
        self.directory = directory
        self.logger = logger
    }

    /// Follows the journal until cancelled.
    public func run(deliver: @escaping @Sendable (Observation) async -> Void) async throws {
        let follower = try JournalFollower(directory: directory, units: patterns.keys.sorted())
        await withTaskCancellationHandler {
            var last: [String: ContinuousClock.Instant] = [:]
            var suppressed: [String: Int] = [:]
            for await entry in follower.entries {
                guard let unit = entry.fields["_SYSTEMD_UNIT"], let wanted = patterns[unit] else { continue }
                for pattern in wanted where entry.message.contains(pattern) {
                    let key = unit + "\u{0}" + pattern
                    if let previous = last[key], ContinuousClock.now - previous < .seconds(1) {
                        suppressed[key, default: 0] += 1
                        continue
                    }
                    last[key] = .now
                    var facts = ["MESSAGE": String(entry.message.prefix(512)), "pattern": pattern]
                    if let count = suppressed.removeValue(forKey: key) { facts["suppressed"] = String(count) }
                    await deliver(Observation(
                        target: unit, kind: .journalMatched(pattern), time: .now(), facts: facts,
                        summary: "journal: \"\(entry.message.prefix(200))\""))
                }
            }
        } onCancel: {
            follower.close()
        }
    }
}
