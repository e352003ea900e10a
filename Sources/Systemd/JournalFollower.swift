import CSystemd
import Foundation
import Glibc

/// Follows the journal as it is written (sd_journal_wait), for a set of units, on a thread of
/// its own. Starts at the end: only entries written after it opened are delivered.
public final class JournalFollower: @unchecked Sendable {
    /// Entries of the units, as they are written: `_SYSTEMD_UNIT` and `MESSAGE` among the fields.
    public let entries: AsyncStream<JournalEntry>
    private let stopping = NSLock()
    private var stopped = false

    /// Opens the journal (the local one, or the files under `directory`) and follows `units`.
    public init(directory: String?, units: [String]) throws(SystemdError) {
        var j: OpaquePointer? = nil
        if let directory {
            try check(sd_journal_open_directory(&j, directory, 0), "sd_journal_open_directory(\(directory))")
        } else {
            try check(sd_journal_open(&j, Int32(SD_JOURNAL_LOCAL_ONLY)), "sd_journal_open")
        }
        let journal = j!
        do {
            for unit in units { try check(sd_journal_add_match(journal, "_SYSTEMD_UNIT=\(unit)", 0), "sd_journal_add_match(\(unit))") }
            try check(sd_journal_seek_tail(journal), "sd_journal_seek_tail")
            _ = sd_journal_previous(journal)
        } catch {
            sd_journal_close(journal)
            throw error
        }
        let (stream, continuation) = AsyncStream.makeStream(of: JournalEntry.self, bufferingPolicy: .bufferingNewest(10_000))
        entries = stream
        // The handle moves to the thread, which alone uses it and closes it.
        let handle = JournalHandle(journal)
        let thread = Thread { [self] in
            let journal = handle.pointer
            while !isStopped {
                while sd_journal_next(journal) > 0 {
                    var usec: UInt64 = 0
                    sd_journal_get_realtime_usec(journal, &usec)
                    var fields: [String: String] = [:]
                    for name in ["MESSAGE", "_SYSTEMD_UNIT", "PRIORITY"] {
                        var data: UnsafeRawPointer? = nil
                        var length = 0
                        if sd_journal_get_data(journal, name, &data, &length) >= 0, let data {
                            let text = String(decoding: UnsafeRawBufferPointer(start: data, count: min(length, 4096)), as: UTF8.self)
                            fields[name] = String(text.dropFirst(name.utf8.count + 1))
                        }
                    }
                    continuation.yield(JournalEntry(realtimeUSec: usec, fields: fields))
                }
                // Wakes on new entries, or every 100 ms to notice close().
                _ = sd_journal_wait(journal, 100_000)
            }
            sd_journal_close(journal)
            continuation.finish()
        }
        thread.name = "medic-journal"
        thread.start()
    }

    private var isStopped: Bool { stopping.withLock { stopped } }

    /// Carries the journal handle to the thread that owns it from then on.
    private struct JournalHandle: @unchecked Sendable {
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
    }

    /// Stops following and closes the journal.
    public func close() { stopping.withLock { stopped = true } }
}
