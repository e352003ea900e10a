import Control
import Engine
import Glibc
import MedicCore

/// Carries out what the control socket was asked, on behalf of `actor`; every change is in
/// the audit log with the caller's uid.
struct ControlHandler: Sendable {
    let engine: Engine
    let reloader: Reloader
    let startedAt: Timestamp
    /// This host's fleet, if it has one.
    let fleet: FleetSetup?
    /// How the resource watcher watches each limit.
    let limitWatches: LimitWatchBoard

    func handle(_ request: ControlRequest, actor: String) async -> ControlResponse {
        switch request.command {
        case .status:
            let engineStatus = await engine.status
            return ControlResponse(ok: true, status: DaemonStatus(
                pid: getpid(), startedAt: startedAt.iso8601, lastReload: await reloader.history.last?.iso8601,
                auditProblem: engineStatus.auditProblem, engine: await engine.report(), limits: limitWatches.all))
        case .pause, .resume:
            let target = request.target ?? "*"
            if request.command == .pause { await engine.pause(target, actor: actor) } else { await engine.resume(target, actor: actor) }
            return ControlResponse(ok: true, message: "\(request.command == .pause ? "paused" : "resumed") automatic action on \(target == "*" ? "every target" : target)")
        case .run:
            guard let playbook = request.playbook, let target = request.target else {
                return .failure("run needs a playbook and a target")
            }
            if let error = await engine.runByHand(playbook: playbook, target: target, actor: actor) { return .failure(error) }
            return ControlResponse(ok: true, message: "running playbook \(playbook) on \(target); follow it with medic audit -f --unit \(target)")
        case .reload:
            // A refused reload is an error for the caller (`medic reload` exits 1 and prints why).
            let (applied, message) = await reloader.reload(by: actor)
            return applied ? ControlResponse(ok: true, message: message) : ControlResponse(ok: false, error: message)
        case .silence:
            return await silence(request, actor: actor)
        case .fleet:
            guard let fleet else { return .failure("this host is in no fleet: its config has no 'fleet:' section") }
            return ControlResponse(ok: true, fleet: await fleet.status())
        case .fleetRelease:
            guard let fleet else { return .failure("this host is in no fleet: its config has no 'fleet:' section") }
            guard let host = request.target, !host.isEmpty else { return .failure("fleet release needs a host") }
            return await fleet.release(host, actor: actor, engine: engine)
        case .unsilence:
            guard let target = request.target else { return .failure("unsilence needs a target") }
            guard await engine.unsilence(target, actor: actor) > 0 else { return .failure("no silence in force on \(target)") }
            return ControlResponse(ok: true, message: "unsilenced \(target)")
        }
    }

    private func silence(_ request: ControlRequest, actor: String) async -> ControlResponse {
        guard let target = request.target, let reason = request.reason, !reason.isEmpty else {
            return .failure("silence needs a target and a reason")
        }
        guard let text = request.duration, let duration = DurationText.parse(text), duration > .zero else {
            return .failure("silence needs a duration such as 1h (found '\(request.duration ?? "")')")
        }
        let delay = request.startIn.flatMap(DurationText.parse) ?? .zero
        let now = Timestamp.now()
        let start = now.adding(delay)
        let end = start.adding(duration)
        await engine.silence(Silence(pattern: target, start: start, end: end, reason: reason, author: actor))
        return ControlResponse(ok: true, message: "silenced \(target) until \(end.iso8601)")
    }
}
