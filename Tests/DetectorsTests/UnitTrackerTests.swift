import Detectors
import MedicCore
import Systemd
import Testing

private let now = Timestamp(wallMicroseconds: 0, monotonicNanoseconds: 0)

private func service(_ result: String, mainPID: UInt32 = 0, code: Int32? = nil, status: Int32? = nil) -> BusEvent {
    .unitChanged(unit: "web.service", state: UnitState(result: result, mainPID: mainPID, execMainPID: 41, execMainCode: code, execMainStatus: status))
}

private func unit(_ active: String, _ sub: String) -> BusEvent {
    .unitChanged(unit: "web.service", state: UnitState(activeState: active, subState: sub))
}

/// Feeds events in order and returns the crash kinds observed.
private func crashes(_ events: [BusEvent], tracker: inout UnitTracker) -> [CrashKind] {
    events.flatMap { tracker.ingest($0, at: now) }.compactMap {
        if case .crashed(let kind) = $0.kind { return kind } else { return nil }
    }
}

@Suite("Unit tracker: systemd's signals → observations")
struct UnitTrackerTests {
    @Test("kill -9 as systemd reports it (Service snapshot, then Unit), repeated: one crash, from the first signal")
    func killedBySignal() {
        var tracker = UnitTracker(units: ["web.service"])
        _ = tracker.snapshot("web.service", UnitState(activeState: "active", subState: "running", result: "success", mainPID: 41), at: now)
        let first = tracker.ingest(service("signal", code: 2, status: 9), at: now)
        #expect(first.map(\.kind) == [.crashed(.signal)])
        #expect(first.first?.summary == "main process 41 killed by signal 9 (SIGKILL)")
        #expect(crashes([unit("failed", "failed"), service("signal", code: 2, status: 9), unit("failed", "failed")], tracker: &tracker).isEmpty)
    }

    @Test("a restart (Result back to success) ends the crash episode; the next crash is reported again")
    func nextCrashAfterRestart() {
        var tracker = UnitTracker(units: ["web.service"])
        #expect(crashes([service("exit-code", code: 1, status: 1), unit("failed", "failed")], tracker: &tracker) == [.exitCode])
        // The restart: systemd repeats the failed Unit snapshot after resetting Result.
        #expect(crashes([service("success", mainPID: 50), unit("failed", "failed"), unit("active", "running")], tracker: &tracker).isEmpty)
        #expect(crashes([service("core-dump", code: 3, status: 11), unit("failed", "failed")], tracker: &tracker) == [.coreDump])
    }

    @Test("systemd's own auto-restart (activating/auto-restart) is one crash, not one per snapshot")
    func autoRestart() {
        var tracker = UnitTracker(units: ["web.service"])
        let events = [service("oom-kill"), unit("activating", "auto-restart"), service("oom-kill"), unit("activating", "auto-restart")]
        #expect(crashes(events, tracker: &tracker) == [.oomKill])
    }

    @Test("each result maps to its crash kind", arguments: [
        ("exit-code", CrashKind.exitCode), ("signal", .signal), ("core-dump", .coreDump), ("oom-kill", .oomKill),
        ("watchdog", .watchdog), ("start-limit-hit", .startLimitHit), ("timeout", .timeout), ("resources", .other),
    ])
    func kinds(result: String, kind: CrashKind) {
        var tracker = UnitTracker(units: ["web.service"])
        #expect(crashes([service(result)], tracker: &tracker) == [kind])
    }

    @Test("a unit found failed at start is reported; a clean stop is not a crash")
    func snapshots() {
        var tracker = UnitTracker(units: ["web.service", "idle.service"])
        let found = tracker.snapshot("web.service", UnitState(activeState: "failed", subState: "failed", result: "exit-code", execMainStatus: 2), at: now)
        #expect(found.contains { $0.kind == .crashed(.exitCode) })
        let idle = tracker.snapshot("idle.service", UnitState(activeState: "inactive", subState: "dead", result: "success"), at: now)
        #expect(!idle.contains { if case .crashed = $0.kind { true } else { false } })
        #expect(crashes([unit("deactivating", "stop-sigterm"), service("success"), unit("inactive", "dead")], tracker: &tracker).isEmpty)
    }

    @Test("a unit taken down by a job, exiting non-zero on SIGTERM: someone else's job is a stop by request, Medic's own (or one systemd passed on from it) is neither a crash nor someone else's")
    func takenDownByJobs() {
        for ours in [false, true] {
            var tracker = UnitTracker(units: ["web.service"])
            _ = tracker.snapshot("web.service", UnitState(activeState: "active", subState: "running", result: "success", mainPID: 41), at: now)
            let events: [BusEvent] = [.jobNew(id: 7, job: "/org/freedesktop/systemd1/job/7", unit: "web.service", ours: ours),
                                      unit("deactivating", "stop-sigterm"), service("exit-code", code: 1, status: 1)]
            let observations = events.flatMap { tracker.ingest($0, at: now) }
            #expect(!observations.contains { if case .crashed = $0.kind { true } else { false } }, "ours: \(ours)")
            #expect(observations.contains { $0.summary.hasPrefix(ours ? "taken down by Medic's own job 7" : "taken down by a job someone else asked for") })
            #expect(observations.contains { $0.kind == .stoppedByRequest("stop or restart") } == !ours)
        }
    }

    @Test("a failed ExecStartPre= is named, not a main process that never ran")
    func failedStartPre() {
        var tracker = UnitTracker(units: ["web.service"])
        var state = UnitState(activeState: "failed", subState: "failed", result: "exit-code", execMainPID: 0, execMainCode: 0, execMainStatus: 0)
        var command = ExecCommandStatus(path: "/usr/bin/check-config", arguments: ["/usr/bin/check-config", "--strict"], pid: 12, code: 1, status: 4)
        command.setting = "ExecStartPre"
        state.failedCommand = command
        let found = tracker.snapshot("web.service", state, at: now)
        #expect(found.contains { $0.summary == "ExecStartPre=/usr/bin/check-config --strict exited with status 4: the main process was never started" })
    }

    @Test("a failed command read at start does not describe a later crash the signals report")
    func failedCommandNotReused() {
        var tracker = UnitTracker(units: ["web.service"])
        var state = UnitState(activeState: "failed", subState: "failed", result: "exit-code", execMainPID: 0, execMainCode: 0, execMainStatus: 0)
        var command = ExecCommandStatus(path: "/usr/bin/check-config", arguments: ["/usr/bin/check-config"], pid: 12, code: 1, status: 4)
        command.setting = "ExecStartPre"
        state.failedCommand = command
        _ = tracker.snapshot("web.service", state, at: now)
        _ = tracker.ingest(service("success", mainPID: 41), at: now)
        _ = tracker.ingest(unit("active", "running"), at: now)
        let crashed = tracker.ingest(service("signal", code: 2, status: 9), at: now)
        #expect(crashed.map(\.summary) == ["main process 41 killed by signal 9 (SIGKILL)"])
    }

    @Test("units not tracked are ignored")
    func untracked() {
        var tracker = UnitTracker(units: ["web.service"])
        #expect(tracker.ingest(.unitChanged(unit: "other.service", state: UnitState(activeState: "failed", result: "signal")), at: now).isEmpty)
    }
}
