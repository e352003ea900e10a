import Foundation
import Testing

@Suite("medic simulate, on the shipped playbooks", .timeLimit(.minutes(5)))
struct SimulateTests {
    /// Runs `medic simulate` on a shipped playbook with a timeline given inline.
    func simulate(_ playbook: String, _ timeline: String, horizon: String = "1h") throws -> (status: Int32, output: String) {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try timeline.write(toFile: dir + "/timeline.jsonl", atomically: true, encoding: .utf8)
        return try medic(["simulate", Paths.packageRoot + "/playbooks/" + playbook, "--events", dir + "/timeline.jsonl", "--horizon", horizon])
    }

    @Test("every shipped playbook has a timeline, and simulating it opens an incident and acts", arguments: [
        "web-backend", "hung-backend", "memory-leak", "unhealthy-503", "crash-loop", "full-disk", "host-down", "host-resources", "alert-error-rate",
    ])
    func everyShippedPlaybook(name: String) throws {
        let (status, output) = try medic([
            "simulate", Paths.packageRoot + "/playbooks/\(name).yaml",
            "--events", Paths.packageRoot + "/playbooks/timelines/\(name).jsonl", "--horizon", "30m",
        ])
        #expect(status == 0, "\(output)")
        #expect(output.contains("incident-opened"), "\(output)")
        #expect(output.contains("step-intent"), "\(output)")
    }

    @Test("host-down: a dead peer's servers go out and come back when it returns; an isolated one is only told about, nothing taken out")
    func hostDownAndIsolated() throws {
        let playbook = Paths.packageRoot + "/playbooks/host-down.yaml"
        let down = try medic(["simulate", playbook, "--events", Paths.packageRoot + "/playbooks/timelines/host-down.jsonl", "--horizon", "2h"])
        #expect(down.output.contains("about to pool maint") && down.output.contains("about to pool ready") && down.output.contains("recovered"), "\(down.output)")
        let isolated = try medic(["simulate", playbook, "--events", Paths.packageRoot + "/playbooks/timelines/host-isolated.jsonl", "--horizon", "1h"])
        #expect(isolated.status == 0 && isolated.output.contains("about to notify oncall") && isolated.output.contains("recovered"), "\(isolated.output)")
        #expect(!isolated.output.contains("pool"), "\(isolated.output)")
    }

    @Test("host-resources: the last resort is a guarded reboot, never more than once in 6h")
    func hostResources() throws {
        let (_, output) = try medic([
            "simulate", Paths.packageRoot + "/playbooks/host-resources.yaml",
            "--events", Paths.packageRoot + "/playbooks/timelines/host-resources.jsonl", "--horizon", "2h",
        ])
        #expect(output.components(separatedBy: "about to reboot").count - 1 == 1, "\(output)")
    }

    @Test("alert-error-rate: a firing alert drains and restarts the unit; it stays unhealthy until the alert is resolved, then returns to the pool; an alert of another job opens nothing")
    func alertErrorRate() throws {
        let (status, output) = try medic([
            "simulate", Paths.packageRoot + "/playbooks/alert-error-rate.yaml",
            "--events", Paths.packageRoot + "/playbooks/timelines/alert-error-rate.jsonl", "--horizon", "30m",
        ])
        #expect(status == 0, "\(output)")
        let lines = output.split(separator: "\n")
        let restart = try #require(lines.firstIndex { $0.contains("about to restart") }, "\(output)")
        let resolved = try #require(lines.firstIndex { $0.contains("alert HighErrorRate resolved") }, "\(output)")
        let ready = try #require(lines.firstIndex { $0.contains("about to pool ready") }, "\(output)")
        #expect(restart < resolved && resolved < ready, "\(output)")
        #expect(output.contains("recovered"), "\(output)")
        let other = try simulate("alert-error-rate.yaml", #"{"at": "0s", "target": "web.service", "event": "alert-firing", "alert": "HighErrorRate", "labels": {"job": "api", "severity": "page"}}"#)
        #expect(other.status == 0 && !other.output.contains("incident-opened"), "\(other.output)")
    }

    @Test("web-backend: a crash loop is restarted three times, then escalated, then retried slowly")
    func webBackend() throws {
        let (status, output) = try medic([
            "simulate", Paths.packageRoot + "/playbooks/web-backend.yaml",
            "--events", Paths.packageRoot + "/playbooks/timelines/web-backend.jsonl", "--horizon", "15m",
        ])
        #expect(status == 0, "\(output)")
        #expect(output.components(separatedBy: "about to restart").count - 1 == 4)
        #expect(output.contains("escalating to level 1 (after 3 restarts in 10m)"))
        #expect(output.contains("trying again every 10m"))
        #expect(output.contains("recovered"))
    }

    @Test("crash-loop: start-limit-hit is not restarted; the server leaves the pool and a human is told")
    func crashLoop() throws {
        let (status, output) = try simulate("crash-loop.yaml", #"{"at": "0s", "target": "worker.service", "event": "crashed", "kind": "start-limit-hit"}"#, horizon: "5m")
        #expect(status == 0)
        #expect(output.contains("about to pool maint"))
        #expect(output.contains("about to notify oncall"))
        #expect(!output.contains("about to restart"))
    }

    @Test("memory-leak: a leak on a host that is itself out of memory is left alone")
    func memoryLeak() throws {
        let leak = #"{"at": "0s", "target": "cache.service", "event": "limit", "limit": "memory > 1.5GiB for 1m""#
        let alone = try simulate("memory-leak.yaml", leak + #", "facts": {"host.pressure.memory": "0.1"}}"#, horizon: "5m")
        #expect(alone.output.contains("about to restart"))
        let starving = try simulate("memory-leak.yaml", leak + #", "facts": {"host.pressure.memory": "0.6"}}"#, horizon: "5m")
        #expect(!starving.output.contains("incident-opened"))
    }

    @Test("a timeline with a bad line is refused with its line number")
    func badTimeline() throws {
        let (status, output) = try simulate("web-backend.yaml", "{\"at\": \"0s\", \"target\": \"web@1.service\", \"event\": \"crashed\"}\n{\"at\": \"soon\", \"target\": \"x\", \"event\": \"failed\"}")
        #expect(status == 1)
        #expect(output.contains("line 2: 'at': 'soon' is not a duration"))
    }
}
