import MedicCore

/// Wall-clock time (microseconds) mapped onto a horizontal stretch of pixels, with the quiet
/// stretches cut short. An incident is milliseconds of action, then seconds or minutes of
/// waiting (a verify, the stabilisation period), and a morning's incidents are hours apart: on
/// one linear scale the action would be a smudge. So each cluster of moments gets its own linear
/// piece, and a gap longer than a fifth of the whole is drawn as a fixed-width break that says how
/// long it was.
struct TimeAxis {
    /// A stretch drawn to scale.
    struct Piece {
        var start: Int64
        var end: Int64
        var left: Double
        var width: Double
    }

    /// A quiet stretch cut short.
    struct Break {
        var start: Int64
        var end: Int64
        var left: Double
        /// From the last moment before it to the first after (the margins of the pieces aside).
        var quiet: Int64
        static let width = 30.0
    }

    private(set) var pieces: [Piece] = []
    private(set) var breaks: [Break] = []

    /// An axis over `moments` (at least one) from `left`, `width` pixels wide.
    init(moments: [Int64], left: Double, width: Double) {
        let times = Array(Set(moments)).sorted()
        let first = times.first ?? 0, last = times.last ?? 0
        let span = max(last - first, 10_000)
        // Clusters: split at every gap longer than a fifth of the whole (and than 50 ms).
        var clusters: [(start: Int64, end: Int64)] = [(first, first)]
        for time in times.dropFirst() {
            if time - clusters[clusters.count - 1].end > max(span / 5, 50_000) {
                clusters.append((time, time))
            } else {
                clusters[clusters.count - 1].end = time
            }
        }
        // Each piece is its cluster with a margin; a cluster of one moment still gets some width.
        let total = clusters.reduce(Int64(0)) { $0 + ($1.end - $1.start) }
        let least = max(total / 12, 1_000)
        let padded = clusters.map { cluster -> (start: Int64, end: Int64) in
            let duration = max(cluster.end - cluster.start, least)
            let margin = duration * 4 / 100 + (duration - (cluster.end - cluster.start)) / 2
            return (cluster.start - margin, cluster.end + margin)
        }
        let weights = padded.map { Double($0.end - $0.start) }
        let drawn = width - Double(padded.count - 1) * Break.width
        var x = left
        for (index, piece) in padded.enumerated() {
            if index > 0 {
                breaks.append(Break(start: padded[index - 1].end, end: piece.start, left: x, quiet: clusters[index].start - clusters[index - 1].end))
                x += Break.width
            }
            let pieceWidth = drawn * weights[index] / weights.reduce(0, +)
            pieces.append(Piece(start: piece.start, end: piece.end, left: x, width: pieceWidth))
            x += pieceWidth
        }
    }

    func x(_ time: Int64) -> Double {
        for (index, piece) in pieces.enumerated() where time <= piece.end || index == pieces.count - 1 {
            if time >= piece.start || index == 0 {
                return piece.left + piece.width * Double(time - piece.start) / Double(max(piece.end - piece.start, 1))
            }
            // In the break before this piece: spread over its width.
            let gap = breaks[index - 1]
            return gap.left + Break.width * Double(time - gap.start) / Double(max(gap.end - gap.start, 1))
        }
        return pieces.first?.left ?? 0
    }

    /// Round times in each piece, about one per 110 pixels, each with its label (a piece too
    /// narrow for one is labelled at its middle).
    func ticks() -> [(time: Int64, label: String)] {
        let ms: Int64 = 1000, s = 1000 * ms, m = 60 * s, h = 60 * m
        let steps: [Int64] = [ms, 2 * ms, 5 * ms, 10 * ms, 20 * ms, 50 * ms, 100 * ms, 200 * ms, 500 * ms, s, 2 * s, 5 * s, 10 * s, 15 * s,
                              30 * s, m, 2 * m, 5 * m, 10 * m, 15 * m, 30 * m, h, 2 * h, 3 * h, 6 * h, 12 * h, 24 * h]
        let days = (pieces.last?.end ?? 0) - (pieces.first?.start ?? 0) > 24 * h
        var ticks: [(Int64, String)] = []
        for piece in pieces {
            let most = max(Int64(piece.width / 110), 1)
            let step = steps.first { (piece.end - piece.start) / $0 < most } ?? 24 * h
            var time = (piece.start / step + 1) * step
            var any = false
            while time < piece.end {
                ticks.append((time, Self.label(time, step: step, days: days)))
                time += step
                any = true
            }
            if !any {
                let middle = piece.start + (piece.end - piece.start) / 2
                ticks.append((middle, Self.label(middle, step: 1, days: days)))
            }
        }
        return ticks
    }

    /// `2026-11-30T22:23:46.123Z` → `22:23:46.123`, `22:23:46` or `22:23` as the step needs
    /// (with the day when the axis spans more than one).
    static func label(_ time: Int64, step: Int64, days: Bool) -> String {
        let iso = Timestamp(wallMicroseconds: time, monotonicNanoseconds: 0).iso8601
        let clock = iso.split(separator: "T").last.map { String($0.dropLast()) } ?? iso
        let shown = step < 1_000_000 ? clock : step < 60_000_000 ? String(clock.prefix(8)) : String(clock.prefix(5))
        return days ? String(iso.prefix(10).dropFirst(5)) + " " + shown : shown
    }
}
