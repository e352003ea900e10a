import Detectors
import Foundation
import MedicCore
import TestHost
import Testing

@Suite("Probes and host pressure")
struct ProbeTests {
    @Test("host pressure is read from PSI and loadavg files, as fractions")
    func hostPressure() throws {
        let dir = NSTemporaryDirectory() + "medic-proc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/pressure", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "some avg10=42.50 avg60=10.00 avg300=1.00 total=5\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=1\n".write(toFile: dir + "/pressure/memory", atomically: true, encoding: .utf8)
        try "some avg10=3.00 avg60=1.00 avg300=1.00 total=5\n".write(toFile: dir + "/pressure/cpu", atomically: true, encoding: .utf8)
        try "1.32 1.44 1.14 2/87 21762\n".write(toFile: dir + "/loadavg", atomically: true, encoding: .utf8)
        let facts = HostPressure.facts(procRoot: dir)
        #expect(facts["host.pressure.memory"] == "0.425")
        #expect(facts["host.pressure.cpu"] == "0.03")
        #expect(facts["host.pressure.io"] == nil, "no file, no fact")
        #expect(facts["host.load"] == "1.32")
    }

    @Test("the host's own pressure files are read the same way")
    func livePressure() {
        let facts = HostPressure.facts()
        if FileManager.default.fileExists(atPath: "/proc/pressure/memory") {
            #expect(facts["host.pressure.memory"].flatMap(Double.init).map { (0...1).contains($0) } == true)
        }
        #expect(facts["host.load"].flatMap(Double.init) != nil)
    }

    @Test("hysteresis: N failures in a row make unhealthy, M passes in a row healthy again")
    func counter() {
        var counter = ProbeCounter(failures: 3, successes: 2)
        #expect(counter.record(passed: true) == nil)
        #expect(counter.record(passed: true) == true)
        #expect(counter.record(passed: false) == nil)
        #expect(counter.record(passed: true) == nil, "one failure between passes changes nothing")
        #expect([counter.record(passed: false), counter.record(passed: false), counter.record(passed: false)] == [nil, nil, false])
        #expect(counter.record(passed: false) == nil, "reported once")
        #expect([counter.record(passed: false), counter.record(passed: false)] == [nil, false], "and again at twice the count (6 in a row)")
        #expect((0..<6).map { _ in counter.record(passed: false) } == [nil, nil, nil, nil, nil, false], "and at 4 times (12)")
        #expect([counter.record(passed: true), counter.record(passed: true)] == [nil, true])
    }

    @Test("an HTTP probe passes on 200, fails on 503, on a missing body text and on an answer that stops halfway, against a real server")
    func http() async throws {
        let dir = NSTemporaryDirectory() + "medic-probe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = freePort()
        let server = try ChildProcess(try Backend.path(), ["--port", String(port), "--status-file", dir + "/status"], logPath: dir + "/log")
        defer { server.stop() }
        let probe = Probe(kind: .http(url: "http://127.0.0.1:\(port)/health"), every: .seconds(1), timeout: .seconds(1), failures: 1, successes: 1)
        var result = await ProbeCheck().run(probe)
        for _ in 0..<100 where !result.passed {
            try await Task.sleep(for: .milliseconds(20))
            result = await ProbeCheck().run(probe)
        }
        #expect(result.passed && result.detail == "HTTP 200")
        try "503".write(toFile: dir + "/status", atomically: true, encoding: .utf8)
        let failing = await ProbeCheck().run(probe)
        #expect(!failing.passed && failing.detail == "HTTP 503")
        // Hung mid-answer (head sent, body never finished): failed at the timeout, not waited on.
        try "stall".write(toFile: dir + "/status", atomically: true, encoding: .utf8)
        let stalled = await ProbeCheck().run(probe)
        #expect(!stalled.passed && stalled.detail == "timed out after 1s" && stalled.latency < .seconds(2), "\(stalled)")
        try FileManager.default.removeItem(atPath: dir + "/status")
        var picky = probe
        picky.expect = "all systems go"
        let body = await ProbeCheck().run(picky)
        #expect(!body.passed && body.detail.contains("body lacks 'all systems go'"))
    }

    @Test("a TCP probe fails on a closed port; an exec probe passes on 0, fails otherwise, and a hung one is killed in time")
    func tcpAndExec() async throws {
        let closed = await ProbeCheck().run(Probe(kind: .tcp(address: "127.0.0.1:\(freePort())"), every: .seconds(1), timeout: .milliseconds(500), failures: 1, successes: 1))
        #expect(!closed.passed)
        let ok = await ProbeCheck().run(Probe(kind: .exec(command: ["/bin/true"]), every: .seconds(1), timeout: .seconds(2), failures: 1, successes: 1))
        #expect(ok.passed)
        let bad = await ProbeCheck().run(Probe(kind: .exec(command: ["/bin/sh", "-c", "exit 3"]), every: .seconds(1), timeout: .seconds(2), failures: 1, successes: 1))
        #expect(!bad.passed && bad.detail == "exit status 3")
        let started = ContinuousClock.now
        let hung = await ProbeCheck().run(Probe(kind: .exec(command: ["/bin/sleep", "30"]), every: .seconds(1), timeout: .milliseconds(300), failures: 1, successes: 1))
        #expect(!hung.passed && hung.detail.contains("timed out"))
        #expect(ContinuousClock.now - started < .seconds(3))
    }
}
