import Glibc
import TestHost

/// Microseconds of CLOCK_REALTIME: the clock systemd, medicd, supervisord and monit all date
/// their records by, so the times of several programs can be compared.
func wallMicroseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}

/// True if an HTTP server on 127.0.0.1:`port` answers `GET /health` with 200 now.
func serving(port: Int) -> Bool {
    (try? httpExchange(port: port, "GET /health HTTP/1.0\r\n\r\n", timeout: 1))?.status == 200
}

/// Polls every millisecond until the backend on `port` serves; the wall time it first did, or
/// nil after `timeout` (the contender failed to bring it back).
func waitUntilServing(port: Int, timeout: Duration) -> Int64? {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if serving(port: port) { return wallMicroseconds() }
        usleep(1000)
    }
    return nil
}

/// The median and 99th percentile of some figures (nearest rank).
struct Spread {
    var median: Double
    var p99: Double

    init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        p99 = sorted[min(sorted.count - 1, Int((0.99 * Double(sorted.count)).rounded(.up)) - 1)]
    }
}

extension Spread {
    /// `median / p99` in milliseconds, with a decimal below 10.
    var milliseconds: String {
        String(format: median < 10 ? "%.1f / %.1f" : "%.0f / %.0f", median, p99)
    }

    /// `median / p99` of counts.
    var counts: String {
        String(format: "%.0f / %.0f", median, p99)
    }

    /// How many times Medic's median a peer's is, e.g. `3.6×`; empty when either is missing.
    static func ratio(_ peer: Spread?, to medic: Spread?) -> String {
        guard let peer, let medic, medic.median > 0 else { return "" }
        return String(format: "%.1f×", peer.median / medic.median)
    }
}
