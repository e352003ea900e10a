import ArgumentParser
import Audit
import Foundation
import MedicCore
import Systemd
import Posix

/// `medic audit`: the audit log, listed (the default) or verified.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log, verify it, or set up its forward-secure sealing.",
        subcommands: [AuditList.self, AuditVerify.self, AuditSetupKeys.self],
        defaultSubcommand: AuditList.self)
}

/// `medic audit [list]`: prints the audit log.
struct AuditList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the audit log: observations, incidents, step intents and results.")

    @OptionGroup var location: StateOption

    @Option(help: "Only records since then: a DURATION ago (30s, 10m, 6h) or a UTC time (2026-11-21T10:00:00Z).")
    var since: String?

    @Option(help: "Only records before then: a DURATION ago or a UTC time.")
    var until: String?

    @Flag(name: [.customShort("f"), .long], help: "Keep printing new records as they are written (Ctrl-C ends).")
    var follow = false

    @Option(help: "Only records about this unit.")
    var unit: String?

    @Option(help: "Only records of this incident.")
    var incident: Int64?

    @Option(help: "Only records of these kinds (comma-separated): \(AuditRecord.Kind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var kind: String?

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func validate() throws {
        for (name, value) in [("--since", since), ("--until", until)] {
            if let value, PointInTime.microseconds(value) == nil {
                throw ValidationError("\(name) '\(value)' is not a duration or a UTC time; write e.g. 30s, 10m, 6h, 2d or 2026-11-21T10:00:00Z")
            }
        }
        if let kind {
            for name in kind.split(separator: ",") where AuditRecord.Kind(rawValue: String(name)) == nil {
                throw ValidationError("--kind '\(name)' is not a record kind; use \(AuditRecord.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
    }

    func run() throws {
        var query = AuditQuery(unit: unit, incident: incident)
        query.sinceWallMicroseconds = since.flatMap(PointInTime.microseconds)
        query.untilWallMicroseconds = until.flatMap(PointInTime.microseconds)
        query.kinds = kind.map { $0.split(separator: ",").compactMap { AuditRecord.Kind(rawValue: String($0)) } }
        let store = try location.openForReading()
        let records = try store.records(query)
        if json {
            for record in records { print(AuditJSON.line(record)) }
        } else {
            print(AuditTable.render(records))
        }
        guard follow else { return }
        // Reading never blocks medicd's writing (WAL): poll for what came after.
        fflush(nil)
        var last = try records.last?.seq ?? store.lastSeq()
        while true {
            usleep(200_000)
            query.afterSeq = last
            let new = try store.records(query)
            for record in new {
                StandardStream.write((json ? AuditJSON.line(record) : AuditTable.line(record)) + "\n")
            }
            last = new.last?.seq ?? last
        }
    }
}

/// `medic audit verify`: walks the hash chain and names the first record that was changed,
/// removed or inserted; compares the log with its witnesses in the journal (a tail cut off, a
/// chain recomputed); with `--key`, proves the seals.
struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the audit log: its hash chain, its witnesses in the journal, and with --key its seals; exit 1 at the first problem.",
        discussion: """
            The chain finds a record changed, removed or inserted anywhere but at the end. The
            journal's witnesses find records removed from the end, and a chain recomputed after an
            edit. The verification key from `medic audit setup-keys` proves that no record sealed
            in an earlier epoch was changed since, even by someone with root now.
            """)

    @OptionGroup var location: StateOption

    @Option(help: "Compare with the witnesses in the journal files under DIR (a copied journal) instead of this host's journal.")
    var journal: String?

    @Flag(help: "Do not compare with the journal.")
    var noJournal = false

    @Option(help: "The verification key `medic audit setup-keys` printed (HEX/START/INTERVAL).")
    var key: String?

    func validate() throws {
        if let key, SealingKey(text: key) == nil {
            throw ValidationError("--key '\(key)' is not a verification key: it is HEX/START/INTERVAL, as `medic audit setup-keys` printed it (64 hex digits, seconds, seconds)")
        }
        if journal != nil, noJournal { throw ValidationError("--journal and --no-journal cannot both be given") }
    }

    func run() throws {
        let store = try location.openForReading()
        let sealing = key.flatMap(SealingKey.init(text:))
        let result: AuditChain.Verification
        do {
            result = try store.verify(key: sealing)
        } catch {
            StandardStream.write("medic: cannot read the audit log \(store.path): \(error)\n", to: STDERR_FILENO)
            throw ExitCode(2)
        }
        if let problem = result.problem {
            print("audit log \(store.path): TAMPERED at record \(problem.seq): \(problem)")
            throw ExitCode(1)
        }
        let range = result.first.map { "records \($0)–\(result.last ?? $0)" } ?? "no records"
        print("audit log \(store.path): chain intact, \(result.records) \(range)" + (result.anchored ? " (older records pruned; anchored)" : ""))
        if sealing != nil {
            let epochs = result.epochs.map { " (epochs \($0.lowerBound)–\($0.upperBound))" } ?? ""
            print("  seals: \(result.sealed) records proved with the key\(epochs)"
                + (result.unsealed > 0 ? "; \(result.unsealed) earlier records were written before sealing began and are not covered" : ""))
        }
        guard !noJournal else { return }
        try compareWithWitness(store)
    }

    private func compareWithWitness(_ store: AuditStore) throws {
        let source = journal ?? "this host's journal"
        guard !store.logID.isEmpty else {
            print("  witness: this log predates journal witnesses (medicd has not run on it since its upgrade)")
            return
        }
        let report: AuditWitness.Report
        do {
            let reader = try journal.map { try JournalReader(directory: $0) } ?? JournalReader()
            report = try AuditWitness.compare(store, journal: reader)
        } catch {
            StandardStream.write("medic: cannot read \(source): \(error)\n", to: STDERR_FILENO)
            throw ExitCode(2)
        }
        if let problem = report.problem {
            print("audit log \(store.path): TAMPERED at record \(problem.seq): \(problem) [\(source)]")
            throw ExitCode(1)
        }
        guard let newest = report.newest else {
            print("  witness: \(source) holds none for this log (MEDIC_LOG=\(store.logID)); records removed from its end cannot be detected")
            return
        }
        print("  witness: \(source) witnessed \(report.witnessed) records up to \(newest); the log matches every one")
    }
}

/// `medic audit setup-keys`: starts forward-secure sealing of the audit log.
struct AuditSetupKeys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup-keys",
        abstract: "Set up forward-secure sealing of the audit log and print the verification key to keep offline.",
        discussion: """
            medicd seals every record from now on with a key that evolves at the end of each epoch,
            forgetting the one before, so that someone who becomes root later cannot re-seal the
            records of earlier epochs. Keep the verification key away from this host (a password
            manager, paper); `medic audit verify --key KEY` proves the seals with it.
            """)

    @OptionGroup var location: StateOption

    @Option(help: "How long each epoch lasts (e.g. 15m): the window in which a record can still be re-sealed by someone who becomes root.")
    var interval = "15m"

    @Flag(help: "Replace a sealing key already set up (records sealed with it stay provable only with its verification key).")
    var force = false

    func validate() throws {
        guard let duration = DurationText.parse(interval), duration >= .seconds(1) else {
            throw ValidationError("--interval '\(interval)' is not a duration of at least 1s; write e.g. 15m")
        }
    }

    func run() throws {
        let key: SealingKey
        do {
            key = try AuditStore.setUpSealing(stateDirectory: location.state, interval: DurationText.parse(interval)!, replace: force)
        } catch {
            StandardStream.write("medic: \(error)\n", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        print("""
            Sealing is set up in \(location.state)/seal.key; medicd seals every record it writes from now on.
            Epochs of \(interval) from \(Timestamp(wallMicroseconds: key.start * 1_000_000, monotonicNanoseconds: 0).iso8601).

            The verification key (keep it off this host):

                \(key.text)

            Verify with: medic audit verify --state \(location.state) --key \(key.text)
            """)
    }
}

/// One JSON object per record, with `details` as an object.
enum AuditJSON {
    struct Line: Encodable {
        var seq: Int64
        var time: String
        var monotonic_ns: Int64
        var boot_id: String
        var host: String
        var actor: String
        var kind: String
        var target: String?
        var incident: Int64?
        var playbook: String?
        var playbook_hash: String?
        var step: String?
        var message: String
        var details: [String: String]
        var hash: String
    }

    static func line(_ record: StoredRecord) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(fields(record))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// The record as a `Line`.
    static func fields(_ record: StoredRecord) -> Line {
        Line(
            seq: record.seq ?? 0, time: record.time, monotonic_ns: record.monotonicNanoseconds, boot_id: record.bootID,
            host: record.host, actor: record.actor, kind: record.kind, target: record.target, incident: record.incident,
            playbook: record.playbook, playbook_hash: record.playbookHash, step: record.step,
            message: record.message, details: record.facts, hash: record.hash)
    }
}

/// The human-readable table.
enum AuditTable {
    static func render(_ records: [StoredRecord]) -> String {
        let header = ["SEQ", "TIME (UTC)", "KIND", "TARGET", "INCIDENT", "STEP", "MESSAGE"]
        return Table(header: header, rows: records.map(cells)).render() + "\n\(records.count) records"
    }

    /// One record on a line of its own, for following the log.
    static func line(_ record: StoredRecord) -> String { cells(record).joined(separator: "  ") }

    private static func cells(_ r: StoredRecord) -> [String] {
        [String(r.seq ?? 0), r.time, r.kind, r.target ?? "-", r.incident.map(String.init) ?? "-", r.step ?? "-", r.message]
    }
}

/// A moment given on the command line: a duration ago (`10m`) or a UTC time (ISO 8601).
enum PointInTime {
    static func microseconds(_ text: String) -> Int64? {
        if let ago = DurationText.parse(text) { return Timestamp.now().wallMicroseconds - ago.milliseconds * 1000 }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970 * 1_000_000) }
    }
}

/// A plain text table: columns padded to their widest cell, the last one left free.
struct Table {
    let header: [String]
    let rows: [[String]]

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                column == row.count - 1 ? row[column] : row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
