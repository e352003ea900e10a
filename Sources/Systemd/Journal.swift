import CSystemd
import Glibc

/// Syslog priorities, as journald stores them in `PRIORITY=`.
public enum JournalPriority: Int, Sendable, Comparable {
    case emergency = 0, alert, critical, error, warning, notice, info, debug

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Writes structured entries to journald (sd_journal_sendv). sd_journal_sendv blocks while
/// journald's socket queue is full (a journald that is busy or stopped), so entries are written
/// from a thread of their own: `post` returns at once, `write` suspends until it is written.
public enum JournalWriter {
    private static let writer = BlockingCallThread(name: "medic-journal-write", capacity: 10_000)

    /// Writes one entry later, from the journal thread, without waiting; past 10,000 waiting,
    /// the oldest waiting is dropped.
    public static func post(message: String, priority: JournalPriority = .info, fields: [(String, String)] = []) {
        let fields = fields.map { Field(name: $0.0, value: $0.1) }
        writer.post { try? send(message: message, priority: priority, fields: fields.map { ($0.name, $0.value) }) }
    }

    /// Writes one entry from the journal thread and returns once it is written, or why not;
    /// the caller suspends, never blocks.
    public static func write(message: String, priority: JournalPriority = .info, fields: [(String, String)] = []) async throws(SystemdError) {
        let fields = fields.map { Field(name: $0.0, value: $0.1) }
        let result: Result<Void, SystemdError> = await writer.perform {
            Result { () throws(SystemdError) in try send(message: message, priority: priority, fields: fields.map { ($0.name, $0.value) }) }
        }
        try result.get()
    }

    /// A field, as something Sendable to carry to the journal thread.
    private struct Field: Sendable {
        var name: String
        var value: String
    }

    /// Sends one entry with `MESSAGE`, `PRIORITY` and the given extra fields (upper-case names,
    /// as journald requires), on the calling thread: it can wait (see above). sd_journal_sendv
    /// succeeds even where no journald listens, so a success is not proof the entry was stored.
    static func send(
        message: String, priority: JournalPriority = .info, fields: [(String, String)] = []
    ) throws(SystemdError) {
        var lines = ["MESSAGE=\(message)", "PRIORITY=\(priority.rawValue)"]
        for (name, value) in fields { lines.append("\(name)=\(value)") }
        // One buffer holds every field; the iovecs point into it while sd_journal_sendv runs.
        let bytes = lines.map { Array($0.utf8) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.reduce(0) { $0 + $1.count }), alignment: 1)
        defer { buffer.deallocate() }
        var vectors: [iovec] = []
        var offset = 0
        for field in bytes {
            let start = buffer.baseAddress! + offset
            start.copyMemory(from: field, byteCount: field.count)
            vectors.append(iovec(iov_base: start, iov_len: field.count))
            offset += field.count
        }
        try check(sd_journal_sendv(vectors, Int32(vectors.count)), "sd_journal_sendv")
    }
}

/// One journal entry: its time and the fields asked for.
public struct JournalEntry: Sendable, Equatable {
    /// Wall-clock time of the entry, microseconds since the epoch.
    public var realtimeUSec: UInt64
    /// Fields by name (`MESSAGE`, `PRIORITY`, `_PID`, …).
    public var fields: [String: String]

    public var message: String { fields["MESSAGE"] ?? "" }
}

/// Reads journal entries, from the local journal or from a journal directory (a test host's
/// `/run/log/journal`, seen from outside). Owns its handle and closes it exactly once.
public final class JournalReader {
    private let journal: OpaquePointer

    /// Opens the journal files under `directory` and its per-machine subdirectories.
    public init(directory: String) throws(SystemdError) {
        var j: OpaquePointer? = nil
        try check(sd_journal_open_directory(&j, directory, 0), "sd_journal_open_directory(\(directory))")
        journal = j!
    }

    /// Opens this host's own journal (system and local files only).
    public init() throws(SystemdError) {
        var j: OpaquePointer? = nil
        try check(sd_journal_open(&j, Int32(SD_JOURNAL_LOCAL_ONLY)), "sd_journal_open")
        journal = j!
    }

    deinit { sd_journal_close(journal) }

    /// The newest `limit` entries of a unit (`_SYSTEMD_UNIT=`), oldest first.
    public func recentEntries(unit: String, limit: Int, fields: [String] = ["MESSAGE", "PRIORITY"]) throws(SystemdError) -> [JournalEntry] {
        try recentEntries(matching: ["_SYSTEMD_UNIT=\(unit)"], limit: limit, fields: fields)
    }

    /// The newest `limit` entries matching every `FIELD=value` in `matches`, oldest first.
    public func recentEntries(matching matches: [String], limit: Int, fields: [String]) throws(SystemdError) -> [JournalEntry] {
        try match(matches)
        try check(sd_journal_seek_tail(journal), "sd_journal_seek_tail")
        var entries: [JournalEntry] = []
        while entries.count < limit, try check(sd_journal_previous(journal), "sd_journal_previous") > 0 {
            entries.append(try current(fields))
        }
        return entries.reversed()
    }

    /// Every entry matching every `FIELD=value` in `matches`, oldest first.
    public func entries(matching matches: [String], fields: [String]) throws(SystemdError) -> [JournalEntry] {
        try match(matches)
        try check(sd_journal_seek_head(journal), "sd_journal_seek_head")
        var entries: [JournalEntry] = []
        while try check(sd_journal_next(journal), "sd_journal_next") > 0 {
            entries.append(try current(fields))
        }
        return entries
    }

    private func match(_ matches: [String]) throws(SystemdError) {
        sd_journal_flush_matches(journal)
        for match in matches {
            try check(sd_journal_add_match(journal, match, 0), "sd_journal_add_match(\(match))")
        }
    }

    /// The entry at the read position, with `fields`.
    private func current(_ fields: [String]) throws(SystemdError) -> JournalEntry {
        var usec: UInt64 = 0
        try check(sd_journal_get_realtime_usec(journal, &usec), "sd_journal_get_realtime_usec")
        var values: [String: String] = [:]
        for field in fields {
            var data: UnsafeRawPointer? = nil
            var length = 0
            if sd_journal_get_data(journal, field, &data, &length) >= 0, let data {
                let text = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
                values[field] = String(text.dropFirst(field.utf8.count + 1))
            }
        }
        return JournalEntry(realtimeUSec: usec, fields: values)
    }
}
