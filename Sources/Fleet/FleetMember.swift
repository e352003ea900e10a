import Foundation
import MedicCore

/// This host's membership of its fleet: its registration kept under a lease, renewed every
/// keep-alive interval. A lease etcd lost (this host was cut off from it for longer than the
/// TTL) is replaced by a new one and the registration written again; etcd out of reach is
/// ridden out, and said once when it starts and once when it ends. A clean stop marks the
/// registration `leaving` and revokes the lease, so that peers do not take it for a death.
public struct FleetMember: Sendable {
    /// What happened to the membership, for the audit log.
    public enum Event: Sendable, Equatable {
        /// Registered under a new lease.
        case registered(lease: Int64)
        /// The lease had expired in etcd (this host was cut off past its TTL).
        case leaseLost(lease: Int64)
        /// etcd could not be reached, since a keep-alive the TTL ago or more.
        case unreachable(String)
        /// etcd answers again.
        case reachable
        /// Left the fleet on a clean stop.
        case left
    }

    public let store: FleetStore
    public let keys: FleetKeys
    public let registration: Registration
    public let ttl: Duration
    public let interval: Duration
    /// Where the lease in use is kept for the others that write under it.
    public let lease: CurrentLease

    public init(store: FleetStore, fleet: FleetConfig, servers: [Registration.Server], lease: CurrentLease) {
        self.store = store
        self.lease = lease
        keys = FleetKeys(fleet: fleet.name)
        registration = Registration(host: fleet.host, address: fleet.address, servers: servers, since: "")
        ttl = fleet.leaseTTL
        interval = fleet.keepAlive
    }

    /// Registers, then keeps the registration alive until cancelled; on cancellation, leaves.
    public func run(events: @escaping @Sendable (Event) async -> Void) async {
        var lease: Int64?
        var since = ""
        var unreachableSince: ContinuousClock.Instant?
        while !Task.isCancelled {
            do {
                if let current = lease {
                    if try await store.keepAlive(current) == nil {
                        lease = nil
                        await self.lease.set(nil)
                        await events(.leaseLost(lease: current))
                        continue
                    }
                } else {
                    (lease, since) = try await register()
                    await self.lease.set(lease)
                    await events(.registered(lease: lease!))
                }
                if unreachableSince != nil {
                    unreachableSince = nil
                    await events(.reachable)
                }
            } catch {
                if unreachableSince == nil {
                    unreachableSince = .now
                    await events(.unreachable(error.description))
                }
            }
            try? await Task.sleep(for: interval)
        }
        if let lease { await leave(lease, since: since) }
        await events(.left)
    }

    /// A new lease, and the registration under it; returns the lease and when it began.
    private func register() async throws(FleetStoreError) -> (Int64, String) {
        let lease = try await store.grant(ttl: ttl)
        var registration = self.registration
        registration.since = Timestamp.now().iso8601
        try await store.put(keys.host(registration.host), registration.bytes, lease: lease.id)
        return (lease.id, registration.since)
    }

    private func leave(_ lease: Int64, since: String) async {
        var registration = self.registration
        registration.since = since
        registration.leaving = true
        _ = try? await store.put(keys.host(registration.host), registration.bytes, lease: lease)
        try? await store.revoke(lease)
    }
}
