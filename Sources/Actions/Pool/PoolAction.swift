import MedicCore

/// Runs `pool` steps: takes a server out of its backend (drain or maint) or returns it (ready),
/// under the capacity guard, one operation per backend at a time so that two targets failing
/// together cannot both pass the guard. Remembers which servers Medic took out: a server an
/// operator put in maintenance is never returned by Medic.
public actor PoolAction {
    private let pool: LoadBalancerPool
    /// Servers Medic took out and has not returned (`socket backend/server`).
    private var heldByMedic: Set<String>
    /// The instance of each held server that Medic's mark is on, where the balancer has
    /// instances (`PoolServer.instance`).
    private var heldInstances: [String: String] = [:]
    /// Serialises the read-decide-set of each backend.
    private var busyBackends: Set<String> = []
    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// `held` restores, from the audit log, the servers Medic had taken out before a restart.
    public init(pool: LoadBalancerPool, held: Set<String> = []) {
        self.pool = pool
        heldByMedic = held
    }

    /// The key under which a server is remembered.
    public static func key(_ member: PoolMembership) -> String { "\(member.balancer.address) \(member.backend)/\(member.server)" }

    /// Takes `server` (`key(_:)`) as Medic's: another host of the fleet took it out for the same
    /// lost peer, and is gone.
    public func adopt(_ server: String) { heldByMedic.insert(server) }

    /// Moves the member's server to `state`; waits for a drain to finish within `timeout`.
    /// `unitDown`: the server's unit is down, so it serves nothing and taking it out takes no
    /// capacity away (the capacity guard protects servers that serve).
    public func run(_ state: PoolState, member: PoolMembership, unitDown: Bool = false, timeout: Duration) async -> StepOutcome {
        let backend = "\(member.balancer.address) \(member.backend)"
        await enter(backend)
        let outcome = await change(state, member: member, unitDown: unitDown)
        leave(backend)
        guard outcome.succeeded, state == .drain, outcome.details["pool_changed"] == "true" else { return outcome }
        return await waitForDrain(member, timeout: timeout, outcome: outcome)
    }

    private func change(_ state: PoolState, member: PoolMembership, unitDown: Bool) async -> StepOutcome {
        let name = "\(member.backend)/\(member.server)"
        do {
            var servers = try await pool.servers(of: member)
            let kept = try await keepHolds(of: servers, member: member)
            if !kept.isEmpty { servers = try await pool.servers(of: member) }
            var outcome = try await change(state, member: member, servers: servers, unitDown: unitDown)
            if !kept.isEmpty {
                outcome.details["pool_reapplied"] = kept.joined(separator: "; ")
                outcome.summary += "; Medic's own hold set again on \(kept.joined(separator: "; "))"
            }
            return outcome
        } catch {
            return .failure(error.description, [AuditFact.poolServer.name: name, AuditFact.poolSocket.name: member.balancer.address])
        }
    }

    /// Sets again what Medic holds out of the backend where the balancer brought a new instance
    /// of the server that forgot it (a Varnish `vcl.use`): without this, a server Medic took out
    /// would be back in service unseen. A server whose same instance is back in service was
    /// returned by a person, and stays so. What was set again, in words.
    private func keepHolds(of servers: [PoolServer], member: PoolMembership) async throws(PoolError) -> [String] {
        var kept: [String] = []
        for server in servers {
            var other = member
            other.server = server.name
            let key = Self.key(other)
            guard heldByMedic.contains(key), let instance = server.instance else { continue }
            guard server.admin == .ready else {
                heldInstances[key] = instance
                continue
            }
            guard let was = heldInstances[key], was != instance else { continue }
            try await pool.set(other, to: .maint)
            heldInstances[key] = instance
            kept.append("\(member.backend)/\(server.name) (its instance in \(was) had been replaced by one in \(instance))")
        }
        return kept
    }

    private func change(_ state: PoolState, member: PoolMembership, servers: [PoolServer], unitDown: Bool) async throws(PoolError) -> StepOutcome {
        let name = "\(member.backend)/\(member.server)"
        let key = Self.key(member)
        guard let server = servers.first(where: { $0.name == member.server }) else {
            return .failure("backend \(member.backend) at \(member.balancer.address) has no server '\(member.server)' (it has \(servers.map(\.name).joined(separator: ", ")))")
        }
        var details = [AuditFact.poolServer.name: name, AuditFact.poolSocket.name: member.balancer.address, "pool_before": server.summary,
                       "pool_backend": servers.map(\.summary).joined(separator: "; ")]
        if server.admin == state {
            details["pool_after"] = server.summary
            details[.poolHeld] = String(heldByMedic.contains(key))
            return .success("\(name) is already \(state.rawValue); nothing to do", details)
        }
        if state == .ready {
            guard heldByMedic.contains(key) else {
                details["pool_after"] = server.summary
                details[.poolHeld] = "false"
                return .success("\(name) stays in \(server.admin.rawValue): Medic did not take it out (an operator did), so only a person returns it", details)
            }
        } else if unitDown {
            details["capacity"] = "not counted: the unit is down, so the server serves nothing"
        } else if server.admin == .ready, !server.inService {
            details["capacity"] = "not counted: the balancer's own checks already keep it out (\(server.status)), so taking it out takes nothing away"
        } else if server.admin == .ready {
            let inService = servers.filter(\.inService).count
            let after = inService - 1
            let required = member.capacity.required(of: servers.count)
            if after < required {
                details["in_service"] = String(inService)
                details["required"] = String(required)
                return .refused(
                    by: "capacity",
                    "taking \(name) out would leave \(after) of \(servers.count) servers in service; at least \(required) must stay (min_in_service \(member.capacity))",
                    details)
            }
        }
        try await pool.set(member, to: state)
        let now = try await pool.servers(of: member).first { $0.name == member.server }
        if state == .ready {
            heldByMedic.remove(key)
            heldInstances[key] = nil
        } else {
            heldByMedic.insert(key)
            heldInstances[key] = now?.instance
        }
        details["pool_after"] = now?.summary ?? "?"
        details[.poolHeld] = String(state != .ready)
        details["pool_changed"] = "true"
        let verb = state == .ready ? "returned to service" : "taken out of service (\(state.rawValue))"
        return .success("\(name) \(verb); was \(server.status)", details)
    }

    /// Waits until the drained server holds no session, or `timeout`; either way the server
    /// takes no new traffic, so a timeout is reported, not failed.
    private func waitForDrain(_ member: PoolMembership, timeout: Duration, outcome: StepOutcome) async -> StepOutcome {
        var outcome = outcome
        let deadline = ContinuousClock.now + timeout
        while true {
            let sessions = (try? await pool.servers(of: member).first { $0.name == member.server })?.sessions ?? 0
            if sessions == 0 {
                outcome.summary += "; drained"
                return outcome
            }
            if ContinuousClock.now >= deadline {
                outcome.summary += "; still \(sessions) sessions after \(DurationText.format(timeout)), going on"
                outcome.details["sessions_left"] = String(sessions)
                return outcome
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    private func enter(_ backend: String) async {
        if busyBackends.insert(backend).inserted { return }
        await withCheckedContinuation { waiting[backend, default: []].append($0) }
    }

    private func leave(_ backend: String) {
        if var queue = waiting[backend], !queue.isEmpty {
            queue.removeFirst().resume()
            waiting[backend] = queue
        } else {
            busyBackends.remove(backend)
        }
    }
}
