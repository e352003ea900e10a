import Synchronization

/// The figures summed over a cgroup's processes from /proc (memory, tasks, open files), kept
/// while the cgroup above it (its slice) uses no CPU. A process that did not run has forked,
/// exited, faulted in a page or opened a file no more than before, and a slice's `usage_usec`
/// counts the CPU of everything below it: so the idle units of one slice (the instances of a
/// template, `system-worker.slice`) cost one read of the slice's `cpu.stat` a round instead of
/// each unit's `cgroup.procs` and a file per process. A unit whose slice ran is read as before.
///
/// A figure is kept between `longest` and twice that (spread, so that units kept together are
/// not all read again in one round): the kernel may reclaim pages of a process that does not
/// run, and a process moved into the cgroup from outside may not have run there yet. Call
/// `endRound()` after each round.
final class QuietCgroups: Sendable {
    /// One of the figures read from /proc.
    enum Figure: Int {
        case memory, tasks, fds, fdLimit
    }

    /// A slice's CPU time at this round's look, and whether it is the same as at the round
    /// before.
    private struct Slice {
        var usage: Int64?
        var unchanged: Bool
        var round: UInt64
    }

    /// A unit's figures, read in round `readRound`, kept until `until`.
    private struct Kept {
        var values: [Figure: Double] = [:]
        var readRound: UInt64
        var until: ContinuousClock.Instant
        var round: UInt64
    }

    private struct State {
        var slices: [String: Slice] = [:]
        var kept: [String: Kept] = [:]
        var round: UInt64 = 0
    }

    private let state = Mutex(State())
    /// The shortest a figure is kept without reading it again.
    let longest: Duration

    init(longest: Duration = .seconds(60)) {
        self.longest = longest
    }

    /// `figure` of the cgroup `group` as read before, if its slice has used no CPU since the
    /// round before (`usage` reads a cgroup's `usage_usec`, once a round per slice) and the
    /// figure is not too old; else `read()`, kept for the rounds after. A cgroup right below the
    /// root is read every time.
    func figure(_ figure: Figure, of group: String, usage: (String) -> Int64?, read: () -> Double?) -> Double? {
        let slice = Self.slice(of: group)
        // The root cgroup's CPU time is counted by ticks: it may not move for a process that ran.
        guard !slice.isEmpty else { return read() }
        if state.withLock({ $0.slices[slice]?.round != $0.round }) {
            let now = usage(slice)
            state.withLock { state in
                let before = state.slices[slice]
                let unchanged = now != nil && before?.usage == now && before.map { $0.round + 1 == state.round } == true
                state.slices[slice] = Slice(usage: now, unchanged: unchanged, round: state.round)
            }
        }
        let now = ContinuousClock.now
        let kept: Double? = state.withLock { state in
            let round = state.round
            guard state.slices[slice]?.unchanged == true, let index = state.kept.index(forKey: group) else { return nil }
            state.kept.values[index].round = round
            let entry = state.kept.values[index]
            return now < entry.until ? entry.values[figure] : nil
        }
        if let kept { return kept }
        let value = read()
        state.withLock { state in
            let round = state.round
            let unchanged = state.slices[slice]?.unchanged == true
            if var entry = state.kept[group], entry.readRound == round || unchanged && now < entry.until {
                entry.values[figure] = value
                entry.round = round
                state.kept[group] = entry
            } else {
                let spread = longest * Double.random(in: 0..<1)
                state.kept[group] = Kept(values: value.map { [figure: $0] } ?? [:], readRound: round, until: now + longest + spread, round: round)
            }
        }
        return value
    }

    /// Ends a sampling round: forgets the cgroups and slices it did not look at.
    func endRound() {
        state.withLock { state in
            let round = state.round
            defer { state.round += 1 }
            if state.kept.values.contains(where: { $0.round != round }) {
                state.kept = state.kept.filter { $0.value.round == round }
            }
            if state.slices.values.contains(where: { $0.round != round }) {
                state.slices = state.slices.filter { $0.value.round == round }
            }
        }
    }

    /// How many cgroups' figures are kept now.
    var count: Int { state.withLock { $0.kept.count } }

    /// The cgroup `group` is in: its path up to the last `/` (the root, "", for a top one).
    static func slice(of group: String) -> String {
        guard let slash = group.lastIndex(of: "/") else { return "" }
        return String(group[..<slash])
    }
}
