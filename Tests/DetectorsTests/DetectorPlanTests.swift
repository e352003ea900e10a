import Detectors
import MedicCore
import Playbooks
import Testing

/// The detector plan: which detectors a set of playbooks needs, worked out without a bus.
@Suite("Detector plan")
struct DetectorPlanTests {
    private func playbook(_ yaml: String) throws -> Playbook {
        try PlaybookParser.parse(data: Array(yaml.utf8), file: "inline.yaml").get()
    }

    private let web = """
        playbook: web
        targets:
          - unit: web.service
            probe: { http: "http://127.0.0.1:8080/health", every: 1s }
            heartbeat: { every: 1s, missed: 3 }
          - unit: "web@*.service"
            depends_on: [ db.service ]
        on:
          - when: unhealthy or heartbeat-missed or journal "out of memory" or heartbeat-late
            do: [ restart ]
          - when: memory > 1GiB
            do: [ restart ]
        """

    @Test("probes, heartbeats, journal patterns, late watchdogs and limits of named units; globs get no single-unit detector")
    func fromPlaybooks() throws {
        let plan = DetectorPlan(playbooks: [try playbook(web)], sampleInterval: .seconds(5))
        #expect(plan.specs.map(\.key) == ["probe web.service", "heartbeats", "journal", "watchdog-late", "resources"])
        guard case .journal(let patterns) = plan.specs[2], case .resources(let units, let host, let interval) = plan.specs[4] else {
            Issue.record("\(plan.specs)")
            return
        }
        #expect(patterns == ["web.service": ["out of memory"]])
        #expect(units.keys.sorted() == ["web.service"] && host.isEmpty && interval == .seconds(5))
        #expect(DetectorPlan(playbooks: [], sampleInterval: .seconds(5)).specs.isEmpty)
    }

    @Test("the unit watcher's units: every target's selector, globs included, and their dependencies")
    func watchedUnits() throws {
        let plan = DetectorPlan(playbooks: [try playbook(web)], sampleInterval: .seconds(5))
        #expect(plan.units.selectors.map(\.description) == ["web.service", "web@*.service"])
        #expect(plan.units.dependencies == ["db.service"])
    }

    @Test("the same playbooks give an equal plan; a changed probe changes only its own spec")
    func stableAcrossReloads() throws {
        let first = DetectorPlan(playbooks: [try playbook(web)], sampleInterval: .seconds(5))
        #expect(first == DetectorPlan(playbooks: [try playbook(web)], sampleInterval: .seconds(5)))
        let changed = DetectorPlan(playbooks: [try playbook(web.replacingOccurrences(of: "8080/health\", every: 1s", with: "8080/health\", every: 2s"))], sampleInterval: .seconds(5))
        #expect(changed.specs[0] != first.specs[0])
        #expect(Array(changed.specs.dropFirst()) == Array(first.specs.dropFirst()))
    }
}
