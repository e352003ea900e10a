import Foundation
import Glibc
import MedicCore
import Posix
import TestHost

/// Scenarios 1 and 2: a backend is killed (`kill -9`) or hangs (SIGSTOP: alive, silent) → the
/// contender notices → the backend serves again. Each contender looks after its own copy of the
/// same tiny C backend on one test host, one contender at a time, `rounds` faults each, each at
/// a random moment. "Serving again" is the first `GET /health` answered with 200, polled every
/// millisecond from the moment of the fault.
struct FaultScenario {
    enum Fault {
        case crash, hang

        var signal: Int32 { self == .crash ? SIGKILL : SIGSTOP }
    }

    let fault: Fault
    let medicd: String
    let rounds: Int

    /// One contender's figures, in milliseconds from the fault.
    struct Result {
        var contender: String
        var settings: String
        var detected: [Double]
        var serving: [Double]
        /// Rounds in which the backend did not serve again within 10 s.
        var failures: Int
    }

    /// How one contender is set up and read.
    struct Contender {
        let name: String
        let settings: String
        let port: Int
        /// The backend's PID now (as this machine sees it).
        let backend: () -> pid_t?
        /// When the contender noticed the fault that happened at `fault` (wall µs), if it says.
        let detected: (_ fault: Int64) -> Int64?
        /// Waits until the contender is ready for the next fault (its incident closed, …).
        let settle: (_ round: Int) -> Void
        /// Done before each fault; what it returns is added to the settings shown.
        var prepare: () throws -> String? = { nil }
    }

    /// Runs the scenario and prints its table; returns what failed.
    func report(number: Int) throws -> [String] {
        let results = try run()
        print("")
        print("\(number). \(fault == .crash ? "kill -9" : "SIGSTOP (a hang)") of a backend (a tiny C HTTP server that starts in ~2 ms), \(rounds) faults each; milliseconds, median / p99:")
        let medic = results.first { $0.contender == "Medic" }.flatMap { Spread($0.serving) }
        print(Table(header: ["contender", "settings", "fault → detected", "fault → serving again", "serving again vs Medic"], rows: results.map { result in
            let serving = Spread(result.serving)
            return [result.contender, result.settings, Spread(result.detected)?.milliseconds ?? "not reported", serving?.milliseconds ?? "never",
                    result.contender == "Medic" ? "" : Spread.ratio(serving, to: medic)]
        }).render())
        if fault == .hang { print("supervisord has no hang detection: a stopped process is RUNNING to it.") }
        return results.filter { $0.failures > 0 || $0.serving.isEmpty }.map {
            "\(fault): \($0.contender) did not bring its backend back in \($0.failures) of \(rounds) faults"
        }
    }

    func run() throws -> [Result] {
        let host = try TestHost(name: "bench-\(fault)", binds: [Backend.packageRoot])
        defer { host.destroy() }
        let bench = host.directory + "/run/bench"
        try FileManager.default.createDirectory(atPath: bench, withIntermediateDirectories: true)
        let backend = try Backend.path()
        let ports = (0..<4).map { _ in freePort() }
        func unit(_ port: Int, _ service: String = "", beat: Int? = nil) -> String {
            """
            [Unit]
            StartLimitIntervalSec=0
            [Service]
            ExecStart=\(backend) --port \(port) --name backend-\(port)\(beat.map { " --heartbeat-ms \($0)" } ?? "")
            LimitCORE=0
            \(service)
            """
        }
        let hang = fault == .hang
        try host.installUnit("web-medic.service", unit(ports[0], hang ? "Environment=NOTIFY_SOCKET=/run/medic-bench/heartbeat.sock" : "", beat: hang ? 50 : nil))
        try host.installUnit("web-systemd.service", unit(
            ports[1], "Restart=always\nRestartSec=0" + (hang ? "\nType=notify\nWatchdogSec=1" : ""), beat: hang ? 250 : nil))
        try host.installUnit("web-monit.service", unit(ports[2]))
        // monit writes the time it acts (its stop or start program) before it calls systemctl.
        let record = { (verb: String) in
            "\"/bin/sh -c 'date +%s%6N >> /run/bench/monit-acted; exec /bin/systemctl \(verb) web-monit.service'\""
        }
        let check = hang
            ? "check host web with address 127.0.0.1\n  if failed port \(ports[2]) protocol http request \"/health\" with timeout 1 seconds then restart"
            : "check process web matching \"backend-\(ports[2])\""
        try """
            set daemon 1
            set logfile /run/bench/monit.log
            set idfile /run/bench/monit.id
            set statefile /run/bench/monit.state
            \(check)
              start program = \(record("start"))
              stop program = \(record("stop"))
            """.write(toFile: bench + "/monitrc", atomically: true, encoding: .utf8)
        chmod(bench + "/monitrc", 0o600)
        try host.installUnit("monit-bench.service", "[Service]\nExecStart=/usr/bin/monit -I -c /run/bench/monitrc\n")
        try """
            [supervisord]
            nodaemon=true
            logfile=/run/bench/supervisord.log
            pidfile=/run/bench/supervisord.pid
            [program:web]
            command=\(backend) --port \(ports[3]) --name backend-\(ports[3])
            autorestart=true
            startsecs=0
            startretries=1000
            """.write(toFile: bench + "/supervisord.conf", atomically: true, encoding: .utf8)
        try host.installUnit("supervisor-bench.service", "[Service]\nExecStart=/usr/bin/supervisord -n -c /run/bench/supervisord.conf\n")
        try host.runInside(["systemctl", "daemon-reload"])

        let medic = try RunningMedicd.start(medicd, on: host, playbooks: ["""
            playbook: web
            targets: [ { unit: web-medic.service\(hang ? ", heartbeat: { every: 100ms, missed: 3 }" : "") } ]
            guards: { rate: { restart: 10000 in 10m }, flap: 100000 in 5m, backoff: { initial: 10ms }, stabilise: 300ms }
            on:
              - when: \(hang ? "heartbeat-missed" : "crashed")
                do: [ restart, { verify: { healthy: within 5s, for: 100ms } } ]
            """], runtime: host.directory + "/run/medic-bench", metrics: false)
        defer { medic.stop() }
        try host.runInside(["systemctl", "start", "web-medic.service", "web-systemd.service", "web-monit.service", "monit-bench.service"]
                           + (hang ? [] : ["supervisor-bench.service"]))

        let backendIn = { (unit: String, port: Int) in
            host.processes(ofUnit: unit).first { WholeFile.text("/proc/\($0)/cmdline")?.contains("backend-\(port)") == true }
        }
        var contenders = [
            Contender(
                name: "Medic", settings: hang ? "heartbeat every 100ms, missed 3 (backend beats every 50 ms); restart" : "restart on crashed",
                port: ports[0],
                backend: { backendIn("web-medic.service", ports[0]) },
                detected: { fault in medic.observed(hang ? "heartbeat-missed" : "crashed", after: fault) },
                settle: { round in medic.waitForClosedIncidents(round) }),
            Contender(
                name: "systemd", settings: "Restart=always, RestartSec=0" + (hang ? ", WatchdogSec=1 (pings every 250 ms)" : ""), port: ports[1],
                backend: { backendIn("web-systemd.service", ports[1]) },
                detected: { fault in
                    let text = (try? host.runInside(["systemctl", "show", "-P", "ActiveExitTimestampMonotonic", "web-systemd.service"])) ?? ""
                    return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)).map { monotonicToWall($0) }.flatMap { $0 >= fault ? $0 : nil }
                },
                settle: { _ in usleep(300_000) }),
            Contender(
                name: "monit", settings: "set daemon 1; " + (hang ? "http check, timeout 1 s, then restart" : "check process, start program"),
                port: ports[2],
                backend: { backendIn("web-monit.service", ports[2]) },
                detected: { fault in
                    let lines = ((try? String(contentsOfFile: bench + "/monit-acted", encoding: .utf8)) ?? "").split(separator: "\n")
                    return lines.compactMap { Int64($0) }.first { $0 >= fault }
                },
                settle: { _ in usleep(1_200_000) }),
        ]
        if !hang {
            // The same medicd, its code and data paged out and dropped from the page cache
            // before each crash: what the first incident after a long idle costs.
            contenders.insert(Contender(
                name: "Medic", settings: "restart on crashed; medicd's file pages paged out before each kill",
                port: ports[0],
                backend: { backendIn("web-medic.service", ports[0]) },
                detected: { fault in medic.observed("crashed", after: fault) },
                settle: { round in medic.waitForClosedIncidents(rounds + round) },
                prepare: {
                    let resident = try PageOut.evict(medic.process.pid)
                    return String(format: " (resident %.1f → %.1f MiB)", resident.before, resident.after)
                }), at: 1)
            contenders.append(Contender(
                name: "supervisord", settings: "autorestart=true, startsecs=0", port: ports[3],
                backend: { backendIn("supervisor-bench.service", ports[3]) },
                detected: { fault in supervisordExit(log: bench + "/supervisord.log", after: fault) },
                settle: { _ in usleep(300_000) }))
        }
        // Faults meet medicd as it runs for hours: past start-up, which ends 10–20 s after
        // READY=1 with its first heap release (and the file pages start-up mapped let go of).
        guard medic.waitUntilSettled() else { throw BenchFailure("medicd never said its start-up settled:\n\(medic.process.output.suffix(2000))") }
        var results: [Result] = []
        for contender in contenders {
            guard waitUntilServing(port: contender.port, timeout: .seconds(20)) != nil else {
                throw BenchFailure("\(contender.name)'s backend never served before the first fault")
            }
            var result = Result(contender: contender.name, settings: contender.settings, detected: [], serving: [], failures: 0)
            for round in 1...rounds {
                guard let pid = contender.backend() else {
                    result.failures += 1
                    break
                }
                // At a random moment, so that a contender that polls (monit) is met at every
                // phase of its cycle.
                if let note = try contender.prepare() { result.settings = contender.settings + note }
                usleep(UInt32.random(in: 100_000...600_000))
                let start = wallMicroseconds()
                kill(pid, fault.signal)
                guard let back = waitUntilServing(port: contender.port, timeout: .seconds(10)) else {
                    result.failures += 1
                    kill(pid, SIGKILL)
                    continue
                }
                result.serving.append(Double(back - start) / 1000)
                contender.settle(round)
                // supervisord's log is to the millisecond: a death logged in the fault's own
                // millisecond counts as 0.
                if let seen = contender.detected(start) { result.detected.append(max(0, Double(seen - start) / 1000)) }
            }
            results.append(result)
        }
        return results
    }
}

/// A CLOCK_MONOTONIC time in µs (as systemd's *Monotonic properties give it) on the wall clock.
func monotonicToWall(_ monotonic: Int64) -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    let monotonicNow = Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    return wallMicroseconds() - (monotonicNow - monotonic)
}

/// When supervisord logged the backend's death at or after `kill` (its log is in UTC here, to
/// the millisecond: `2026-11-21 12:00:00,123 INFO exited: web (terminated by SIGKILL; …)`).
func supervisordExit(log: String, after kill: Int64) -> Int64? {
    let formatter = DateFormatter()
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss,SSS"
    formatter.timeZone = TimeZone(identifier: "UTC")
    let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("exited: web") }
    return lines.compactMap { line in formatter.date(from: String(line.prefix(23))).map { Int64($0.timeIntervalSince1970 * 1_000_000) } }
        .first { $0 >= kill - 1000 }
}
