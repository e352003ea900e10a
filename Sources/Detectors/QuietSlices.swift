import MedicCore

/// Which slices used no CPU since the sampling round before: a unit in such a slice ran no
/// process since it was last sampled, so it forked, exited, faulted in a page, opened a file or
/// used CPU no more than then, and a limit of it that was below its threshold still is. A
/// slice's `cpu.stat` `usage_usec` counts everything below it, so the idle instances of a
/// template (`system-worker.slice`) cost one read of their slice a round instead of each unit's
/// files. A slice is read at most once a round, before any unit in it is sampled.
///
/// Every `refreshEvery` a round reads every unit whatever its slice says: the kernel may reclaim
/// pages of a process that does not run, a socket's receive queue grows without it, and a
/// process moved into a cgroup from outside may not have run there yet. A cgroup right below the
/// root has no slice and is never quiet; nor is the slice medicd itself runs in.
struct QuietSlices {
    /// One slice: its CPU time at its last read, in which round, and whether it was unchanged
    /// since the round before.
    private struct Slice {
        let path: String
        var usage: Double?
        var round: UInt64
        var quiet: Bool
    }

    /// The longest a unit goes unread: every unit is read in a round this often.
    static let refreshEvery: Duration = .seconds(60)

    /// A handful at most (the slices of the units watched): looked up by a scan, so that no
    /// string is made per unit and round.
    private var slices: [Slice] = []
    private var round: UInt64 = 0
    private var refreshedAt: ContinuousClock.Instant?
    /// Whether this round reads every unit.
    private var refreshing = true

    /// Starts a round at `now`.
    mutating func beginRound(at now: ContinuousClock.Instant) {
        round += 1
        refreshing = refreshedAt.map { now - $0 >= Self.refreshEvery } ?? true
        if refreshing { refreshedAt = now }
    }

    /// Whether the slice above `group` has used no CPU since the round before (never in a
    /// refreshing round). `usage` reads a cgroup's `usage_usec`: called once a round per slice.
    mutating func isQuiet(_ group: String, usage: (String) -> Double?) -> Bool {
        let utf8 = group.utf8
        guard let slash = utf8.lastIndex(of: UInt8(ascii: "/")), slash != utf8.startIndex else { return false }
        let parent = utf8[..<slash]
        let index: Int
        if let known = slices.firstIndex(where: { $0.path.utf8.elementsEqual(parent) }) {
            index = known
        } else {
            slices.append(Slice(path: String(Substring(parent)), usage: nil, round: 0, quiet: false))
            index = slices.count - 1
        }
        if slices[index].round != round {
            let now = usage(slices[index].path)
            slices[index].quiet = !refreshing && now != nil && slices[index].round == round - 1 && now == slices[index].usage
            slices[index].usage = now
            slices[index].round = round
        }
        return slices[index].quiet
    }

    /// Whether `limit`, below its threshold, stays below it while its unit's processes do not
    /// run: memory, tasks, open files and CPU only grow by running. Pressure does not (a task
    /// waiting on IO uses no CPU), nor does a limit on a figure falling.
    static func holdsWhileIdle(_ limit: ResourceLimit) -> Bool {
        guard limit.comparison == .greater || limit.comparison == .greaterOrEqual else { return false }
        switch limit.resource {
        case .memory, .cpu, .tasks, .fds: return true
        case .disk, .pressure: return false
        }
    }
}
