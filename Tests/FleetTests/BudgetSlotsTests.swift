import Fleet
import Foundation
import MedicCore
import TestHost
import Testing

@Suite("Fleet budgets on a real etcd", .serialized, .timeLimit(.minutes(5)))
struct BudgetSlotsTests {
    private func fleet(_ host: String, _ endpoints: [String]) -> FleetConfig {
        FleetConfig(name: "t", host: host, address: "127.0.0.1:1", endpoints: endpoints)
    }

    @Test("N slots: the first N hosts get one, the next waits and is refused naming the holders; a host that holds one gets it again; released, it is free")
    func slots() async throws {
        try await withEtcd("budgets") { etcd in
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints))
            let budget = FleetBudget(name: "reboot", slots: 2, wait: .milliseconds(1500))
            var a = BudgetSlots(store: store, fleet: fleet("a", etcd.endpoints))
            a.pollInterval = .milliseconds(100)
            let b = BudgetSlots(store: store, fleet: fleet("b", etcd.endpoints))
            var c = BudgetSlots(store: store, fleet: fleet("c", etcd.endpoints))
            c.pollInterval = .milliseconds(100)
            guard case .granted(let slotA, _, _) = await a.acquire(budget, incident: 1, target: "web.service"),
                  case .granted(let slotB, _, _) = await b.acquire(budget, incident: 7, target: "web.service")
            else { Issue.record("the first two hosts did not get a slot"); return }
            #expect(Set([slotA, slotB]) == [0, 1])
            let refused = await c.acquire(budget, incident: 3, target: "web.service")
            guard case .refused(let why) = refused else { Issue.record("\(refused)"); return }
            #expect(why.contains("no slot of the fleet budget 'reboot' (2 at once) within 1s500ms") && why.contains("a since") && why.contains("b since"), "\(why)")
            // Taken up again after a restart mid-reboot: still a's.
            guard case .granted(let again, _, _) = await a.acquire(budget, incident: 1, target: "web.service") else { Issue.record("a lost its slot"); return }
            #expect(again == slotA)
            #expect(try await a.release(heldBy: "b") == ["reboot/\(slotB)"])
            guard case .granted = await c.acquire(budget, incident: 3, target: "web.service") else { Issue.record("c got no slot once b's was freed"); return }
            await store.shutdown()
        }
    }

    @Test("etcd frozen (it accepts connections and never answers): the wait still ends, refused, by its deadline and one answer's time")
    func frozen() async throws {
        try await withEtcd("budgets-frozen") { etcd in
            let store = try EtcdGateway(.init(endpoints: etcd.endpoints, timeout: .seconds(1)))
            let slots = BudgetSlots(store: store, fleet: fleet("a", etcd.endpoints))
            try await store.put("/medic/t/warm", Array("1".utf8), lease: nil)
            let member = try #require(etcd.members.first)
            member.freeze()
            defer { member.thaw() }
            let started = ContinuousClock.now
            let answer = await slots.acquire(FleetBudget(name: "reboot", slots: 1, wait: .seconds(3)), incident: 1, target: "web.service")
            let took = ContinuousClock.now - started
            guard case .refused(let why) = answer else { Issue.record("\(answer)"); return }
            #expect(why.hasPrefix("the fleet budget 'reboot' cannot be checked"), "\(why)")
            #expect(took < .seconds(5), "refused after \(took)")
            member.thaw()
            await store.shutdown()
        }
    }

    @Test("etcd out of reach: a budgeted step is refused, never run without its slot")
    func unreachable() async throws {
        let store = try EtcdGateway(.init(endpoints: ["http://127.0.0.1:1"], timeout: .milliseconds(500)))
        let slots = BudgetSlots(store: store, fleet: fleet("a", ["http://127.0.0.1:1"]))
        let answer = await slots.acquire(FleetBudget(name: "reboot", slots: 1, wait: .seconds(30)), incident: 1, target: "web.service")
        guard case .refused(let why) = answer else { Issue.record("\(answer)"); return }
        #expect(why.hasPrefix("the fleet budget 'reboot' cannot be checked") && why.hasSuffix("a budgeted step is never run without its slot"), "\(why)")
        await store.shutdown()
    }
}
