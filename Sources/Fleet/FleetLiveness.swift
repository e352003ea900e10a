import Foundation
import MedicCore

/// Watches the fleet's registrations and tells a dead host from a cut-off one. A registration
/// that ends without saying it is leaving (its lease expired) is the first signal; then every
/// live peer probes the host itself and writes its verdict. Unreachable from every responding
/// peer, with at least two responding: `host-down`. Reachable by any: `host-isolated` (it lost
/// etcd, not its life). With fewer than two peers to corroborate, the host is taken as down
/// only after `aloneGrace`, if it is still gone and unreachable. Exactly one peer acts on a
/// decision: the holder of the lost host's lock (etcd's mutex recipe, the lowest create
/// revision under `locks/LOST/`), whose revision is the fencing token its steps carry. When the
/// host registers again and answers, the holder delivers `host-returned` and lets the lock go.
///
/// Observations are about the target `host/NAME` and carry the host's pool servers.
public actor FleetLiveness {
    /// What this peer knows of each other host.
    public enum State: String, Sendable {
        case up, lost, down, isolated, returning
    }

    private let store: FleetStore
    private let keys: FleetKeys
    private let me: String
    private let lease: CurrentLease
    private let probe: HostProbe
    /// How long the live peers have to write their verdicts.
    private let corroboration: Duration
    private let aloneGrace: Duration
    /// How often the peer next in line for a lost host's lock looks whether the acting peer is
    /// still there (the lease TTL: an acting peer that died is gone from etcd by then).
    private let standByInterval: Duration
    private var known: [String: Registration] = [:]
    private var states: [String: State] = [:] {
        didSet { onChange?(states) }
    }
    /// Told every peer's state whenever one changes (for the metrics).
    private let onChange: (@Sendable ([String: State]) -> Void)?
    /// The revision at which each lost host's registration ended.
    private var losses: [String: Int64] = [:]
    private var deliver: (@Sendable (Observation) async -> Void)?

    public init(
        store: FleetStore, fleet: FleetConfig, lease: CurrentLease, probe: HostProbe = HostProbe(), corroboration: Duration? = nil,
        onChange: (@Sendable ([String: State]) -> Void)? = nil
    ) {
        self.store = store
        self.onChange = onChange
        keys = FleetKeys(fleet: fleet.name)
        me = fleet.host
        self.lease = lease
        self.probe = probe
        self.corroboration = corroboration ?? max(.seconds(2), fleet.keepAlive * 2)
        aloneGrace = fleet.aloneGrace
        standByInterval = fleet.leaseTTL
    }

    /// The target name of a fleet host in observations and playbooks.
    public static func target(_ host: String) -> String { "host/\(host)" }

    /// Every other host known: its state, its last registration, and the peer that holds its
    /// lock (read from etcd now; nil if none, or if etcd cannot be read).
    public func report() async -> [(host: String, state: State, registration: Registration, acting: String?)] {
        var rows: [(host: String, state: State, registration: Registration, acting: String?)] = []
        for (host, registration) in known.sorted(by: { $0.key < $1.key }) {
            guard let state = states[host] else { continue }
            let acting = state == .up ? nil : (try? await lockHolder(host))?.host
            rows.append((host, state, registration, acting))
        }
        return rows
    }

    /// Follows the registrations until cancelled. etcd out of reach is an outside condition, not
    /// a fault of medicd's: the watch is started again (reading the registrations afresh) every
    /// second or few, for as long as it takes, and said once when it starts and once when it ends.
    public func run(deliver: @escaping @Sendable (Observation) async -> Void) async {
        self.deliver = deliver
        var failing: String?
        var pause: Duration = .milliseconds(500)
        while !Task.isCancelled {
            do {
                try await follow {
                    if failing != nil {
                        failing = nil
                        pause = .milliseconds(500)
                        await self.note(nil, "watching the fleet again")
                    }
                }
            } catch {
                if failing == nil {
                    failing = "\(error)"
                    await note(nil, "cannot watch the fleet (\(error)); trying again until etcd answers, and nobody is declared lost meanwhile")
                }
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(5))
        }
    }

    /// One watch: the registrations read, then followed; `watching` is called once both answered.
    private func follow(watching: () async -> Void) async throws {
        let (current, revision) = try await store.range(keys.hosts, prefix: true)
        var present: Set<String> = []
        for key in current {
            guard let registration = Registration(bytes: key.value), registration.host != me else { continue }
            present.insert(registration.host)
            await registered(registration)
        }
        // Hosts that vanished while this peer was not watching are lost now.
        for host in known.keys where !present.contains(host) && states[host] == .up {
            startLoss(host, at: revision)
        }
        await watching()
        for try await batch in store.watch(prefix: keys.hosts, from: revision + 1) {
            for event in batch {
                switch event {
                case .put(let key):
                    guard let registration = Registration(bytes: key.value), registration.host != me, !registration.leaving else { continue }
                    await registered(registration)
                case .delete(let key, let at):
                    let host = String(key.dropFirst(keys.hosts.count))
                    guard host != me, let last = known[host] else { continue }
                    if last.leaving {
                        known[host] = nil
                        states[host] = nil
                        await note(host, "left the fleet (a clean stop)")
                    } else {
                        startLoss(host, at: at)
                    }
                }
            }
        }
    }

    // MARK: A host registers

    private func registered(_ registration: Registration) async {
        let host = registration.host
        let before = states[host]
        known[host] = registration
        switch before {
        case nil:
            states[host] = .up
        case .up, .returning:
            return
        case .lost:
            // A blip: back before it was decided.
            states[host] = .up
            losses[host] = nil
            await note(host, "registered again before its loss was decided")
        case .down, .isolated:
            states[host] = .returning
            Task { await self.returning(host, was: before!) }
        }
    }

    private func returning(_ host: String, was: State) async {
        guard let registration = known[host] else { return }
        // Its probe must pass before its servers go back.
        // Tried every second for as long as it stays registered (a lost registration ends it).
        var answer = await probe.check(registration)
        while !answer.reachable, states[host] == .returning, !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            answer = await probe.check(registration)
        }
        guard states[host] == .returning, answer.reachable else { return }
        states[host] = .up
        losses[host] = nil
        let holder = try? await lockHolder(host)
        if holder?.host == me {
            await deliver?(Observation(
                target: Self.target(host), kind: .hostReturned, time: .now(),
                facts: ["fleet_host": host, "was": was.rawValue, "probe": answer.detail, AuditFact.fencingToken.name: String(holder!.revision)],
                summary: "host \(host) is back in the fleet and answers its probe (it was \(was.rawValue))", pools: registration.pools))
        } else {
            await note(host, "is back and answers its probe (it was \(was.rawValue)); \(holder.map { "\($0.host) returns its servers" } ?? "nobody holds its lock")")
        }
        _ = try? await store.delete(keys.locks(on: host) + me, prefix: false)
    }

    // MARK: A host is lost

    private func startLoss(_ host: String, at revision: Int64) {
        guard states[host] == .up || states[host] == .returning else { return }
        states[host] = .lost
        losses[host] = revision
        Task { await self.corroborate(host, loss: revision) }
    }

    private func corroborate(_ host: String, loss: Int64) async {
        guard let registration = known[host] else { return }
        let expired = Timestamp.now()
        let mine = await probe.check(registration)
        let myLease = await lease.current()
        let verdict = Verdict(peer: me, lost: host, loss: loss, reachable: mine.reachable, detail: mine.detail)
        _ = try? await store.put(keys.verdict(by: me, on: host), verdict.bytes, lease: myLease)
        let peers = Set(known.keys.filter { $0 != host && states[$0] == .up }).union([me])
        var verdicts: [String: Verdict] = [me: verdict]
        let deadline = ContinuousClock.now + corroboration
        while ContinuousClock.now < deadline, verdicts.count < peers.count {
            try? await Task.sleep(for: .milliseconds(50))
            verdicts.merge(await self.verdicts(on: host, loss: loss, from: peers)) { own, _ in own }
        }
        guard states[host] == .lost, losses[host] == loss else { return }
        var evidence = verdicts.values.sorted { $0.peer < $1.peer }.map { "\($0.peer): \($0.reachable ? "reachable" : "unreachable") (\($0.detail))" }
        let decision: State
        if verdicts.values.contains(where: \.reachable) {
            decision = .isolated
        } else if verdicts.count >= 2 {
            decision = .down
        } else {
            await note(host, "lost its lease; fewer than two peers can corroborate, so it is taken as down only if still gone and unreachable in \(DurationText.format(aloneGrace))")
            try? await Task.sleep(for: aloneGrace)
            guard states[host] == .lost, losses[host] == loss else { return }
            let again = await probe.check(registration)
            evidence.append("\(me), after \(DurationText.format(aloneGrace)) alone: \(again.reachable ? "reachable" : "unreachable") (\(again.detail))")
            decision = again.reachable ? .isolated : .down
        }
        states[host] = decision
        await decide(host, decision, registration: registration, loss: loss, expired: expired, evidence: evidence)
    }

    /// The verdicts on `host`'s loss `loss` by `peers` (older losses' verdicts ignored).
    private func verdicts(on host: String, loss: Int64, from peers: Set<String>) async -> [String: Verdict] {
        guard let (all, _) = try? await store.range(keys.verdicts, prefix: true) else { return [:] }
        var found: [String: Verdict] = [:]
        for key in all where key.key.hasSuffix("/" + host) {
            guard let verdict = Verdict(bytes: key.value), verdict.lost == host, verdict.loss == loss, peers.contains(verdict.peer),
                  key.key == keys.verdict(by: verdict.peer, on: host)
            else { continue }
            found[verdict.peer] = verdict
        }
        return found
    }

    private func decide(_ host: String, _ decision: State, registration: Registration, loss: Int64, expired: Timestamp, evidence: [String]) async {
        let myLease = await lease.current()
        _ = try? await store.create(keys.locks(on: host) + me, Array(me.utf8), lease: myLease)
        guard let holder = try? await lockHolder(host) else {
            await note(host, "was found \(decision.rawValue), but its lock cannot be read: nobody acts from here")
            return
        }
        let facts = Self.decisionFacts(host, loss: loss, expired: expired, evidence: evidence, holder: holder)
        guard holder.host == me else {
            await note(host, "is \(decision.rawValue) on the peers' evidence; \(holder.host) acts on it (lock revision \(holder.revision))", facts: facts)
            Task { await self.standBy(host, decision, acting: holder.host, registration: registration, loss: loss, expired: expired, evidence: evidence) }
            return
        }
        await act(host, decision, registration: registration, expired: expired, evidence: evidence, facts: facts)
    }

    /// While `host` stays lost with `decision`, follows who holds its lock. If the acting peer
    /// goes (its lock entry ends with its lease) and this peer's entry is then the lowest, this
    /// peer takes over: it delivers the decision again under its own fencing token. A playbook's
    /// steps bear being run again (a server already out stays out, and is Medic's to return
    /// when the host is back). The next in line looks every lease TTL, the one after it every
    /// two, and so on, so that a large fleet does not poll etcd for every lost host.
    private func standBy(
        _ host: String, _ decision: State, acting: String, registration: Registration, loss: Int64, expired: Timestamp, evidence: [String]
    ) async {
        var acting = acting
        var rank = 1
        while !Task.isCancelled {
            try? await Task.sleep(for: standByInterval * rank)
            guard states[host] == decision, losses[host] == loss else { return }
            guard let entries = try? await lockEntries(host) else { continue }
            if !entries.contains(where: { $0.host == me }) {
                // This peer's own entry went with a lease it lost meanwhile: in line again.
                _ = try? await store.create(keys.locks(on: host) + me, Array(me.utf8), lease: await lease.current())
                continue
            }
            guard let holder = entries.first, holder.host == me else {
                if let holder = entries.first { acting = holder.host }
                rank = max(1, entries.firstIndex { $0.host == me } ?? 1)
                continue
            }
            var facts = Self.decisionFacts(host, loss: loss, expired: expired, evidence: evidence, holder: holder)
            facts["taken_over_from"] = acting
            await note(host, "is still \(decision.rawValue), and \(acting), which acted on it, has left the fleet: this host takes over (lock revision \(holder.revision))", facts: facts)
            await act(host, decision, registration: registration, expired: expired, evidence: evidence, facts: facts)
            return
        }
    }

    /// What a decision on `host` rests on, and who acts on it under which fencing token.
    private static func decisionFacts(
        _ host: String, loss: Int64, expired: Timestamp, evidence: [String], holder: (host: String, revision: Int64)
    ) -> [String: String] {
        [
            "fleet_host": host, "lease_lost_revision": String(loss), "lease_lost_seen": expired.iso8601, "verdicts": evidence.joined(separator: "; "),
            AuditFact.fencingToken.name: String(holder.revision), "acting_host": holder.host,
        ]
    }

    /// Delivers the decision on `host`, as the holder of its lock.
    private func act(_ host: String, _ decision: State, registration: Registration, expired: Timestamp, evidence: [String], facts: [String: String]) async {
        let down = decision == .down
        await deliver?(Observation(
            target: Self.target(host), kind: down ? .hostDown : .hostIsolated, time: .now(), occurred: expired, facts: facts,
            summary: down
                ? "host \(host) is down: its lease expired and no peer can reach it (\(evidence.count) verdicts)"
                : "host \(host) is cut off from etcd but alive: a peer reaches it",
            pools: registration.pools))
    }

    /// Who holds `host`'s lock: the lowest create revision under its lock prefix.
    private func lockHolder(_ host: String) async throws -> (host: String, revision: Int64)? {
        try await lockEntries(host).first
    }

    /// The peers in line for `host`'s lock, the holder first.
    private func lockEntries(_ host: String) async throws -> [(host: String, revision: Int64)] {
        let (locks, _) = try await store.range(keys.locks(on: host), prefix: true)
        return locks.sorted { $0.createRevision < $1.createRevision }.map { (String($0.key.dropFirst(keys.locks(on: host).count)), $0.createRevision) }
    }

    /// An observation that opens nothing: what this peer saw of `host` (or of the fleet, given
    /// nil), for the audit log.
    private func note(_ host: String?, _ text: String, facts: [String: String] = [:]) async {
        await deliver?(Observation(
            target: host.map(Self.target) ?? "fleet", kind: .fleetNote, time: .now(),
            facts: facts.merging(["fleet_host": host ?? "*"]) { own, _ in own }, summary: host.map { "host \($0) \(text)" } ?? "fleet: \(text)"))
    }
}

extension Registration {
    /// Its servers as pool memberships, for the pool step that takes them out or returns them.
    public var pools: [PoolMembership] {
        servers.map(\.membership)
    }
}
