import Foundation
import MedicCore
import Synchronization

/// Who holds a slot of a fleet budget: at `/medic/FLEET/budgets/NAME/SLOT`, bound to no lease,
/// so that a host that dies while it holds one (mid-reboot) keeps it until it is back and
/// healthy, or a person frees it (`medic fleet release HOST`).
public struct SlotHolder: StoredJSON, Sendable, Equatable {
    public var host: String
    public var incident: Int64
    public var target: String
    /// When it was taken (RFC 3339).
    public var since: String

    public init(host: String, incident: Int64, target: String, since: String) {
        self.host = host
        self.incident = incident
        self.target = target
        self.since = since
    }

}

extension FleetKeys {
    /// Every budget's slots: `budgets/NAME/SLOT`.
    public var budgets: String { prefix + "budgets/" }
    public func slot(_ budget: String, _ index: Int) -> String { budgets + budget + "/" + String(index) }
}

/// The fleet's budgets in etcd, for this host: an N-slot semaphore per budget, each slot taken
/// by creating its key in a transaction (`create_revision == 0`), so that two hosts can never
/// both take the same one.
public struct BudgetSlots: FleetBudgets {
    public let store: FleetStore
    public let keys: FleetKeys
    public let host: String
    /// How often a waiting host looks for a free slot.
    public var pollInterval: Duration = .seconds(1)
    /// Whether this host may hold a slot: set when one is granted, and at start (one may have
    /// been taken before a reboot); whoever gives slots back clears it once none is held, so
    /// that a host holding nothing never asks etcd.
    public let mayHold = MayHold()

    /// Shared by the copies of a `BudgetSlots`.
    public final class MayHold: Sendable {
        private let state = Mutex((mayHold: true, grants: 0))
        public var value: Bool { state.withLock { $0.mayHold } }
        /// How many slots were granted so far: read before looking at the slots held.
        public var grants: Int { state.withLock { $0.grants } }

        func granted() { state.withLock { $0 = (true, $0.grants + 1) } }

        /// None is held: cleared, unless a slot was granted since `grants` was read.
        public func noneHeld(since grants: Int) {
            state.withLock { if $0.grants == grants { $0.mayHold = false } }
        }
    }

    public init(store: FleetStore, fleet: FleetConfig) {
        self.store = store
        keys = FleetKeys(fleet: fleet.name)
        host = fleet.host
    }

    /// Each request is bounded by the store's own timeout, so the wait ends by its deadline
    /// (and at most one round of requests past it) even when etcd stops answering.
    public func acquire(_ budget: FleetBudget, incident: Int64, target: String) async -> BudgetGrant {
        let started = ContinuousClock.now
        let deadline = started + budget.wait
        var holders: [String] = []
        while true {
            do {
                let holder = SlotHolder(host: host, incident: incident, target: target, since: Timestamp.now().iso8601)
                for index in 0..<budget.slots {
                    let key = keys.slot(budget.name, index)
                    let (created, now) = try await store.create(key, holder.bytes, lease: nil)
                    // Ours already (this host took it before medicd restarted, mid-reboot): still ours.
                    if created || now.flatMap({ SlotHolder(bytes: $0.value) })?.host == host {
                        mayHold.granted()
                        return .granted(slot: index, revision: now?.createRevision ?? 0, waited: ContinuousClock.now - started)
                    }
                }
                holders = try await self.holders(budget.name).map { "\($0.holder.host) since \($0.holder.since)" }
            } catch {
                return .refused("the fleet budget '\(budget.name)' cannot be checked: \(error); a budgeted step is never run without its slot")
            }
            guard ContinuousClock.now + pollInterval < deadline else {
                return .refused("no slot of the fleet budget '\(budget.name)' (\(budget.slots) at once) within \(DurationText.format(budget.wait)): held by \(holders.joined(separator: ", "))")
            }
            try? await Task.sleep(for: pollInterval)
            if Task.isCancelled { return .refused("stopped while waiting for a slot of the fleet budget '\(budget.name)'") }
        }
    }

    /// The slots of `budget` (every budget, given nil) and who holds them.
    public func holders(_ budget: String? = nil) async throws(FleetStoreError) -> [(budget: String, slot: Int, holder: SlotHolder, revision: Int64)] {
        let (all, _) = try await store.range(budget.map { keys.budgets + $0 + "/" } ?? keys.budgets, prefix: true)
        return all.compactMap { key in
            let parts = key.key.dropFirst(keys.budgets.count).split(separator: "/")
            guard parts.count == 2, let slot = Int(parts[1]), let holder = SlotHolder(bytes: key.value) else { return nil }
            return (String(parts[0]), slot, holder, key.modRevision)
        }
    }

    /// Frees every slot `host` holds (of every budget); returns what was freed.
    @discardableResult
    public func release(heldBy host: String, where keep: (SlotHolder) -> Bool = { _ in false }) async throws(FleetStoreError) -> [String] {
        var freed: [String] = []
        for slot in try await holders() where slot.holder.host == host && !keep(slot.holder) {
            try await store.delete(keys.slot(slot.budget, slot.slot), prefix: false)
            freed.append("\(slot.budget)/\(slot.slot)")
        }
        return freed
    }
}
