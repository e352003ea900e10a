import MedicCore

/// The shares of time a unit used CPU and stalled on memory, CPU and IO between two samples:
/// the figures CPU and pressure limits compare.
struct Rates: Sendable {
    /// CPU seconds a second (1.0 is one core).
    var cpu: Double?
    /// The share of time some tasks stalled, by resource.
    var stalls: [ResourceLimit.Pressure: Double] = [:]
}

/// Turns cumulative figures (CPU seconds, seconds stalled) into rates, each reading against the
/// previous reading of the same figure of the same target.
struct RateMeter {
    private var last: [String: (cpu: (Double, ContinuousClock.Instant)?, stalls: [ResourceLimit.Pressure: (Double, ContinuousClock.Instant)])] = [:]

    /// The rates since `target`'s previous sample; `sample` becomes the previous one for the
    /// figures it has.
    mutating func rates(_ target: String, _ sample: UnitSample, at now: ContinuousClock.Instant) -> Rates {
        var rates = Rates()
        // A memory or tasks limit alone has no rate to work out: nothing is kept for it.
        guard sample.cpuSeconds != nil || !sample.stalls.isEmpty else { return rates }
        var entry = last[target] ?? (nil, [:])
        if let seconds = sample.cpuSeconds {
            rates.cpu = entry.cpu.flatMap { Self.rate(from: $0, to: (seconds, now)) }
            entry.cpu = (seconds, now)
        }
        for (pressure, stalled) in sample.stalls {
            rates.stalls[pressure] = entry.stalls[pressure].flatMap { Self.rate(from: $0, to: (stalled, now)) }
            entry.stalls[pressure] = (stalled, now)
        }
        last[target] = entry
        return rates
    }

    /// Records that `target`'s CPU time is the same at `now` as at its previous sample (it did
    /// not run), so that the next rate is worked out from `now`, not averaged over the time it
    /// was idle.
    mutating func unchanged(_ target: String, at now: ContinuousClock.Instant) {
        guard let seconds = last[target]?.cpu?.0 else { return }
        last[target]?.cpu = (seconds, now)
    }

    private static func rate(from old: (Double, ContinuousClock.Instant), to new: (Double, ContinuousClock.Instant)) -> Double? {
        guard new.1 > old.1 else { return nil }
        return max(0, new.0 - old.0) / (new.1 - old.1).seconds
    }
}
