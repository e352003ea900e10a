import Glibc

/// A moment, on both clocks the audit log needs: wall-clock (UTC, for people) and monotonic
/// (for exact intervals that a clock step cannot skew).
public struct Timestamp: Sendable, Equatable, Comparable, Codable {
    /// Microseconds since the Unix epoch (CLOCK_REALTIME).
    public var wallMicroseconds: Int64
    /// Nanoseconds of CLOCK_MONOTONIC.
    public var monotonicNanoseconds: Int64

    public init(wallMicroseconds: Int64, monotonicNanoseconds: Int64) {
        self.wallMicroseconds = wallMicroseconds
        self.monotonicNanoseconds = monotonicNanoseconds
    }

    /// Now, read from the kernel's clocks.
    public static func now() -> Timestamp {
        var wall = timespec(), mono = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        clock_gettime(CLOCK_MONOTONIC, &mono)
        return Timestamp(
            wallMicroseconds: Int64(wall.tv_sec) * 1_000_000 + Int64(wall.tv_nsec) / 1000,
            monotonicNanoseconds: Int64(mono.tv_sec) * 1_000_000_000 + Int64(mono.tv_nsec))
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.monotonicNanoseconds < b.monotonicNanoseconds }

    /// The monotonic time from `earlier` to this.
    public func since(_ earlier: Timestamp) -> Duration {
        .nanoseconds(monotonicNanoseconds - earlier.monotonicNanoseconds)
    }

    /// ISO 8601 in UTC with milliseconds: `2026-11-21T09:30:00.123Z`.
    public var iso8601: String {
        var seconds = time_t(wallMicroseconds / 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let ms = (wallMicroseconds % 1_000_000) / 1000
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }
}

extension Timestamp {
    /// This moment plus a duration (on both clocks).
    public func adding(_ duration: Duration) -> Timestamp {
        let ns = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        return Timestamp(wallMicroseconds: wallMicroseconds + ns / 1000, monotonicNanoseconds: monotonicNanoseconds + ns)
    }

    /// The moment at wall-clock `wall`, with its monotonic time derived from this one's (for
    /// times recorded on an earlier boot, or in the future).
    public func movedTo(wall: Int64) -> Timestamp {
        Timestamp(wallMicroseconds: wall, monotonicNanoseconds: monotonicNanoseconds - (wallMicroseconds - wall) * 1000)
    }
}
