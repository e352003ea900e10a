import Foundation

/// A peer's finding on a lost host, at `/medic/FLEET/verdicts/PEER/LOST` under the peer's own
/// lease (so a dead peer's verdicts go with it): whether it could reach the host, for which loss
/// (the revision at which the host's registration ended: a verdict on an older loss, replayed,
/// counts for nothing).
public struct Verdict: StoredJSON, Sendable, Equatable {
    public var peer: String
    public var lost: String
    public var loss: Int64
    public var reachable: Bool
    /// What the probe saw, for the audit log: `GET http://10.0.0.12:9467/health: connection refused`.
    public var detail: String

    public init(peer: String, lost: String, loss: Int64, reachable: Bool, detail: String) {
        self.peer = peer
        self.lost = lost
        self.loss = loss
        self.reachable = reachable
        self.detail = detail
    }

}

extension FleetKeys {
    /// Every verdict, by peer: `verdicts/PEER/LOST`.
    public var verdicts: String { prefix + "verdicts/" }
    public func verdict(by peer: String, on lost: String) -> String { verdicts + peer + "/" + lost }
    /// The lock on acting for a lost host: `locks/LOST/PEER`, the lowest create revision owns.
    public func locks(on lost: String) -> String { prefix + "locks/" + lost + "/" }
}

/// The lease this host's keys are bound to now (its registration's): verdicts and locks are
/// written under it, so that they go when this host does.
public actor CurrentLease {
    private var id: Int64?
    private var waiters: [CheckedContinuation<Int64, Never>] = []

    public init() {}

    func set(_ lease: Int64?) {
        id = lease
        if let lease {
            for waiter in waiters { waiter.resume(returning: lease) }
            waiters.removeAll()
        }
    }

    /// The lease now, or the next one granted.
    public func current() async -> Int64 {
        if let id { return id }
        return await withCheckedContinuation { waiters.append($0) }
    }
}
