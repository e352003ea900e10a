import MedicCore

/// One key of the fleet's store, with the revisions etcd keeps for it.
public struct StoredKey: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    /// The revision that created it: in a lock, the lowest one owns (a fencing token).
    public var createRevision: Int64
    public var modRevision: Int64
    /// The lease it is bound to; 0 if none.
    public var lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.lease = lease
    }

    /// The value as UTF-8 text.
    public var text: String { String(decoding: value, as: UTF8.self) }
}

/// What a watch saw: a key put (created or changed) or deleted (by a request or its lease's
/// expiry), at a revision.
public enum WatchEvent: Sendable, Equatable {
    case put(StoredKey)
    case delete(key: String, revision: Int64)
}

/// A lease: keys bound to it vanish when it is not kept alive for `ttl`.
public struct Lease: Sendable, Equatable {
    public var id: Int64
    public var ttl: Duration
}

/// What the fleet needs of its store: etcd v3's keys, leases, transactions and watches. The
/// JSON gateway implements it (`EtcdGateway`); a gRPC transport could replace it.
public protocol FleetStore: Sendable {
    /// A new lease of `ttl`.
    func grant(ttl: Duration) async throws(FleetStoreError) -> Lease
    /// Keeps `lease` alive once; nil when etcd no longer has it (it expired: the lease is lost).
    func keepAlive(_ lease: Int64) async throws(FleetStoreError) -> Duration?
    /// Ends `lease` and deletes its keys.
    func revoke(_ lease: Int64) async throws(FleetStoreError)
    /// Sets `key`, bound to `lease` when given; returns the store's revision after it.
    @discardableResult
    func put(_ key: String, _ value: [UInt8], lease: Int64?) async throws(FleetStoreError) -> Int64
    /// Creates `key` only if it does not exist (`create_revision == 0`), in one transaction;
    /// returns whether it did, and the key as it now stands.
    func create(_ key: String, _ value: [UInt8], lease: Int64?) async throws(FleetStoreError) -> (created: Bool, now: StoredKey?)
    /// The keys under `prefix` (or just `key` when `prefix` is false), in key order, and the
    /// store's revision when they were read.
    func range(_ key: String, prefix: Bool) async throws(FleetStoreError) -> (keys: [StoredKey], revision: Int64)
    /// Deletes `key` (or every key under it, with `prefix`); returns how many went.
    @discardableResult
    func delete(_ key: String, prefix: Bool) async throws(FleetStoreError) -> Int
    /// Every change under `prefix` from `revision` on, until cancelled or the connection ends
    /// (then the stream throws; watch again from the last revision seen + 1).
    func watch(prefix: String, from revision: Int64) -> AsyncThrowingStream<[WatchEvent], Error>
}

extension FleetStore {
    /// The one key `key`, if it exists.
    public func get(_ key: String) async throws(FleetStoreError) -> StoredKey? {
        try await range(key, prefix: false).keys.first
    }
}

/// Why a request to the store failed, in words an operator can act on.
public struct FleetStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// No endpoint answered.
        case unreachable
        /// The credentials were refused, or the user may not do this (etcd's permission denied).
        case denied
        /// A lease etcd does not know (it expired).
        case leaseNotFound
        /// etcd answered with an error, or with something that is not its JSON.
        case failed
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
