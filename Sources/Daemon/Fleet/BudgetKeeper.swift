import Audit
import Engine
import Fleet
import Logging
import MedicCore
import ServiceLifecycle

/// Gives back the fleet budget slots this host holds once the incident that took each one has
/// closed with the target healthy again (the host is back from its reboot and verified). A slot
/// whose incident closed otherwise (escalated, failed) stays held: a person looks, and frees it
/// with `medic fleet release HOST`. Looks every `interval` while this host may hold a slot
/// (`BudgetSlots.mayHold`), never otherwise; etcd out of reach is waited out.
struct BudgetKeeper: Service {
    let slots: BudgetSlots
    let store: AuditStore
    let engine: Engine
    let logger: Logger
    var interval: Duration = .seconds(2)

    func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            if slots.mayHold.value { await releaseFinished() }
            try? await Task.sleep(for: interval)
        }
    }

    private func releaseFinished() async {
        let grants = slots.mayHold.grants
        guard let held = try? await slots.holders().filter({ $0.holder.host == slots.host }) else { return }
        guard !held.isEmpty else { return slots.mayHold.noneHeld(since: grants) }
        let open = Set(await engine.report().incidents.map(\.id))
        for slot in held where !open.contains(slot.holder.incident) {
            let closed = (try? store.records(AuditQuery(kinds: [.incidentClosed], incident: slot.holder.incident)))?.last
            guard let outcome = closed?.facts[.outcome], outcome.hasPrefix("recovered") else { continue }
            guard (try? await slots.store.delete(slots.keys.slot(slot.budget, slot.slot), prefix: false)) != nil else { continue }
            let message = "fleet budget \(slot.budget): slot \(slot.slot) given back: incident \(slot.holder.incident) closed \(outcome) (\(slot.holder.target) healthy again)"
            logger.notice("\(message)")
            await engine.record(AuditRecord(
                kind: .daemon, target: slot.holder.target, incident: slot.holder.incident, message: message,
                details: ["budget": slot.budget, "budget_slot": String(slot.slot)]))
        }
    }
}

extension Task where Success == Never, Failure == Never {
    /// Whether the current task was cancelled or its service group is shutting down.
    static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
