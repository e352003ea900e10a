import MedicCore

/// A server as its load balancer sees it.
public struct PoolServer: Sendable, Equatable {
    public var name: String
    /// Where an administrator (or Medic) put it: ready, drain or maint.
    public var admin: PoolState
    /// The balancer's own status text (`UP`, `DOWN 1/3`, `MAINT`, `DRAIN`, `no check`).
    public var status: String
    /// Sessions it holds now.
    public var sessions: Int
    /// Which instance of the server this is, where the balancer replaces servers with new
    /// instances that forget their admin state (Varnish: the VCL that defines it); nil where a
    /// server stays the same one (HAProxy).
    public var instance: String?

    public init(name: String, admin: PoolState, status: String, sessions: Int, instance: String? = nil) {
        self.name = name
        self.admin = admin
        self.status = status
        self.sessions = sessions
        self.instance = instance
    }

    /// Taking new traffic: ready and not marked down by the balancer's own checks.
    public var inService: Bool {
        admin == .ready && (status.hasPrefix("UP") || status == "no check" || status == "OPEN")
    }

    /// `s1 UP (ready, 3 sessions)`.
    public var summary: String { "\(name) \(status) (\(admin.rawValue), \(sessions) sessions)" }
}

/// Why a pool operation failed, in words that name what to fix.
public struct PoolError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// A load balancer's pool, as Medic needs it: read a backend's servers, set one's state.
/// HAProxy's runtime API implements it; nginx upstream files, Envoy or a service catalog could.
public protocol LoadBalancerPool: Sendable {
    /// The servers of the member's backend, in the balancer's order.
    func servers(of member: PoolMembership) async throws(PoolError) -> [PoolServer]
    /// Puts the member's server in `state`.
    func set(_ member: PoolMembership, to state: PoolState) async throws(PoolError)
}
