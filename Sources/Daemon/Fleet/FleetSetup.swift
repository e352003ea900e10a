import Control
import Detectors
import Engine
import Fleet
import Foundation
import Glibc
import Logging
import MedicCore
import Playbooks
import ServiceLifecycle

/// This host in its fleet (when the config has `fleet:`): the etcd client, the lease its keys
/// live under, its registration kept alive, the health endpoint its peers probe, and the
/// liveness detector that watches the other hosts.
struct FleetSetup: Sendable {
    let config: FleetConfig
    let store: EtcdGateway
    let lease = CurrentLease()
    let liveness: FleetLiveness
    /// The fleet's budgets (`reboot: { fleet_budget: N }`).
    let budgets: BudgetSlots
    /// The servers taken out of their pools for lost peers, as the fleet remembers them.
    let poolHolds: PoolHolds
    /// What this host did to peers, told to them; what they did to it, collected.
    let acts: PeerActs
    /// This host's membership as last heard, for `medic fleet`.
    let membership = MembershipState()

    /// Reads the credentials (refused unless only root can read them) and makes the client;
    /// its requests and the peers' states go to `metrics`.
    init(_ config: FleetConfig, metrics: MedicMetrics) throws {
        self.config = config
        let secrets = try Self.secrets(config)
        let user = config.user.map { ($0, secrets.password ?? "") }
        do {
            store = try EtcdGateway(
                .init(endpoints: config.endpoints, user: user, caFile: config.caFile, certificateFile: config.certificateFile, keyFile: config.keyFile),
                observe: { _, took, error in metrics.etcd(took: took, failed: error.map { "\($0.kind)" }) })
        } catch {
            throw FleetSetupError(description: "\(error)")
        }
        liveness = FleetLiveness(store: store, fleet: config, lease: lease, onChange: { states in metrics.fleet(states.values.map(\.rawValue)) })
        metrics.fleet([])
        budgets = BudgetSlots(store: store, fleet: config)
        acts = PeerActs(store: store, fleet: config)
        poolHolds = PoolHolds(store: store, fleet: config)
    }

    /// Frees the budget slots `host` holds, asked by a person; audited.
    func release(_ host: String, actor: String, engine: Engine) async -> ControlResponse {
        do {
            let freed = try await budgets.release(heldBy: host)
            guard !freed.isEmpty else { return .failure("\(host) holds no slot of any fleet budget") }
            let message = "released \(host)'s fleet budget slots: \(freed.joined(separator: ", "))"
            await engine.record(AuditRecord(
                kind: .humanCommand, message: message, details: [AuditFact.command.name: "fleet release", "fleet_host": host], actor: actor))
            return ControlResponse(ok: true, message: message)
        } catch {
            return .failure("cannot release \(host)'s slots: \(error)")
        }
    }

    /// The registration's keep-alive, as a service; its events go to the audit log.
    func member(playbooks: [Playbook], engine: Engine, logger: Logger) -> some Service {
        FleetMembership(
            member: FleetMember(store: store, fleet: config, servers: Registration.servers(of: playbooks), lease: lease),
            fleet: config, state: membership, acts: acts, engine: engine, logger: logger)
    }

    /// `GET /health` on the fleet address, answering `medicd HOST` while medicd runs.
    func health(engine: Engine, logger: Logger) -> HTTPListener? {
        guard let address = ListenAddress(config.address) else { return nil }
        let body = Array("medicd \(config.host)\n".utf8)
        return HTTPListener(name: "fleet health", notServed: "the fleet's health endpoint is not served (peers will find this host unreachable)", address: address, routes: ["/health": .page { (.ok, "text/plain", body) }], engine: engine, logger: logger)
    }

    /// What `medic fleet` shows.
    func status() async -> FleetStatus {
        let hosts = await liveness.report().map { row in
            FleetStatus.Host(
                name: row.host, state: row.state.rawValue, address: row.registration.address,
                servers: row.registration.pools.map(PoolMembership.describe), registeredSince: row.registration.since, actingHost: row.acting)
        }
        let slots = ((try? await budgets.holders()) ?? []).map {
            FleetStatus.Slot(budget: $0.budget, slot: $0.slot, host: $0.holder.host, incident: $0.holder.incident, since: $0.holder.since)
        }
        return FleetStatus(fleet: config.name, host: config.host, membership: await membership.text, hosts: hosts, budgets: slots)
    }

    /// The password and the TLS key's files, each refused unless only root can read it: checked
    /// as medicd starts, before it opens anything else.
    static func secrets(_ config: FleetConfig) throws -> (password: String?, key: String?) {
        (try config.passwordFile.map { try SecretFile.read($0, what: "fleet.password_file") }, try config.keyFile.map { try SecretFile.read($0, what: "fleet.tls.key") })
    }
}

struct FleetSetupError: Error, CustomStringConvertible {
    var description: String
}

/// Keeps this host registered, and writes what happens to its membership in the audit log.
struct FleetMembership: Service {
    let member: FleetMember
    let fleet: FleetConfig
    let state: MembershipState
    let acts: PeerActs
    let engine: Engine
    let logger: Logger

    func run() async throws {
        let task = Task {
            await member.run { event in
                let message: String
                switch event {
                case .registered(let lease): message = "fleet \(fleet.name): registered as \(fleet.host) under lease \(String(lease, radix: 16))"
                case .leaseLost(let lease): message = "fleet \(fleet.name): lease \(String(lease, radix: 16)) was lost (etcd was out of reach past its \(DurationText.format(fleet.leaseTTL)) TTL): registering again"
                case .unreachable(let why): message = "fleet \(fleet.name): etcd is out of reach (\(why)); local healing goes on, fleet steps are refused"
                case .reachable: message = "fleet \(fleet.name): etcd answers again"
                case .left: message = "fleet \(fleet.name): left the fleet (\(fleet.host) stops cleanly)"
                }
                await state.note(event)
                logger.notice("\(message)")
                await engine.record(AuditRecord(kind: .daemon, message: message, details: ["fleet": fleet.name, "fleet_host": fleet.host]))
                if case .registered = event { await collectWhatWasDone() }
            }
        }
        await withTaskCancellationOrGracefulShutdownHandler {
            await task.value
        } onCancelOrGracefulShutdown: {
            task.cancel()
        }
    }
}

extension FleetMembership {
    /// Writes into this host's audit log what its peers did to it while it was away.
    func collectWhatWasDone() async {
        do {
            try await acts.collect { done in
                for act in done {
                    await engine.record(AuditRecord(
                        kind: .daemon, incident: nil,
                        message: "while this host was away, \(act.peer) did: \(act.message) (its \(act.kind) record \(act.seq), at \(act.time))",
                        details: [
                            "fleet_peer": act.peer, "peer_seq": String(act.seq), "peer_incident": act.incident.map(String.init) ?? "", "peer_kind": act.kind,
                            "peer_time": act.time,
                        ].merging(act.step.map { ["peer_step": $0] } ?? [:]) { own, _ in own }))
                }
            }
        } catch {
            logger.warning("fleet \(fleet.name): cannot read what peers did to this host while it was away: \(error)")
        }
    }
}

/// This host's membership as last heard from `FleetMember`.
actor MembershipState {
    private(set) var text = "not yet registered"

    func note(_ event: FleetMember.Event) {
        switch event {
        case .registered(let lease): text = "registered (lease \(String(lease, radix: 16)) since \(Timestamp.now().iso8601))"
        case .leaseLost: text = "lease lost; registering again"
        case .unreachable(let why): text = "etcd unreachable since \(Timestamp.now().iso8601): \(why)"
        case .reachable: text = "registered (etcd answers again since \(Timestamp.now().iso8601))"
        case .left: text = "left the fleet"
        }
    }
}

extension FleetLiveness: Detector {}
