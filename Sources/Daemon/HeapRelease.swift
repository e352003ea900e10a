import CLinux
import Logging
import MedicCore
import ServiceLifecycle

/// Gives the heap's free memory back to the kernel after bursts of work. glibc keeps what a
/// burst freed in its arenas for reuse (start-up reads every target: at 10,000 units that is
/// about 30 MiB freed but still resident; a crash storm or a reload alike). `malloc_trim` hands
/// the free pages back; it runs once start-up has settled, then once a minute when more than
/// 256 KiB was freed since. The first release empties the caches kept beside malloc's free lists
/// before (`releaseCaches`: the audit log's SQLite caches, which start-up's records filled) and
/// lets go of the file pages start-up mapped after (`ColdPages`).
public struct HeapRelease: Service {
    /// Opened once every target has been read and READY=1 sent.
    let started: Gate
    /// Empties the caches that hold memory for reuse beyond malloc's own, before the first
    /// release (`AuditStore.releaseMemory`). Not before the later ones: its code, run once a
    /// minute, would stay mapped (1.5 MiB at 1,000 units) until the next `ColdPages.unmap`.
    let releaseCaches: @Sendable () async -> Void
    /// How often the gate is looked at before READY=1: the first release comes one to two of
    /// these after it (the resource watcher's first round reads every unit's cgroup over the
    /// bus after READY=1).
    static let settle = Duration.seconds(10)
    /// How often the free heap is looked at after that.
    static let every = Duration.seconds(60)
    /// Less freed than this since the last release is left alone: not worth the arenas' locks.
    /// At 1,000 units what the sampler's first rounds after the settle free is 0.3 MiB, which
    /// a threshold of 1 MiB left resident for as long as medicd ran.
    static let threshold = 256 << 10
    let logger: Logger

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                // Looked at every `settle` (not waited on), so that a stop before READY=1 ends it.
                repeat { try await Task.sleep(for: Self.settle) } while !started.isOpen
                await releaseCaches()
                // The heap trimmed and the line logged before the pages are let go of, so that
                // what is mapped again is what idle runs (the line's formatting alone maps 1 MiB).
                var free = Self.release(ifFreed: Self.threshold, since: 0, logger: logger)
                logger.info("start-up settled: letting go of the file pages it mapped")
                let clock = ContinuousClock()
                var unmapped = 0
                let took = clock.measure { unmapped = ColdPages.unmap() }
                logger.debug("let go of \(Quantity.formatSize(Double(unmapped))) of file pages (\(took.milliseconds) ms)")
                while true {
                    try await Task.sleep(for: Self.every)
                    free = Self.release(ifFreed: Self.threshold, since: free, logger: logger)
                }
            }
        } catch is CancellationError {
            return
        }
    }

    /// Sets up glibc's heap for a daemon that is idle most of its life; medicd's first call,
    /// before it starts a thread.
    ///
    /// One arena for every thread (`M_ARENA_MAX`): glibc gives each thread that meets a locked
    /// arena one of its own, up to eight per core, and each keeps what its thread freed for that
    /// thread (a thread arena's top is never trimmed). medicd's threads mostly wait; the arena's
    /// lock is met in a burst of work, and each thread's cache of small blocks (tcache) takes
    /// most of it. Scenario 5: 100 units 9.5 → 8.8 MiB resident, 1,000 units 11.9 → 11.6 MiB,
    /// READY=1 no later.
    ///
    /// Every block of 128 KiB or more in a mapping of its own (`M_MMAP_THRESHOLD`): glibc
    /// otherwise raises that threshold to the size of each large block it maps and frees (up to
    /// 32 MiB), and the threshold for trimming an arena's top to twice that: after start-up's
    /// large temporaries (the replies of the bus, the tables of thousands of units as they
    /// grow, files read whole), blocks of megabytes came from the arenas, left them fragmented
    /// when freed, and a thread arena's free top of up to twice the threshold was never handed
    /// back (`malloc_trim` does not trim it). With the threshold fixed, a large block goes back
    /// to the kernel when it is freed. Anonymous memory at 10,000 units, scenario 5: 30–38 MiB
    /// before, 25 MiB after; at 1,000 units 8.0 → 6.8 MiB.
    public static func configure() {
        mallopt(M_ARENA_MAX, 1)
        mallopt(M_MMAP_THRESHOLD, 128 << 10)
    }

    /// Hands the heap's free pages back when more than `threshold` bytes are free beyond
    /// `since`: the least free since the last release (pages handed back stay counted as free,
    /// and free memory taken again and freed again is new). Returns the next `since`.
    static func release(ifFreed threshold: Int, since: Int = 0, logger: Logger) -> Int {
        let free = Int(mallinfo2().fordblks)
        guard free - since > threshold else { return min(free, since) }
        malloc_trim(0)
        logger.debug("heap: released free memory (\(Quantity.formatSize(Double(free))) free)")
        return free
    }
}
