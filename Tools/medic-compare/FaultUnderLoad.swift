import Foundation
import TestHost

/// What scenarios 3 and 9 share: backends faulted under load behind a balancer, each set-up's
/// figures per kind of fault, and the watch on the faulted server's place in rotation.
struct FaultFigures<Setup> {
    var setup: Setup
    var fault: PoolScenario.Fault
    /// Requests that failed or took longer than 1 s, per fault.
    var affected: [Double] = []
    var failed: [Double] = []
    /// Milliseconds from the fault until the balancer stopped sending the server requests.
    var outOfRotation: [Double] = []
    var failures: [String] = []

    /// Adds one round: its load's counts, and when the server went out (`shown`: the balancer
    /// shows it, so a server never out is a failure).
    mutating func add(_ load: LoadResult, out: Double?, shown: Bool) {
        affected.append(Double(load.affected))
        failed.append(Double(load.failed))
        if let out { outOfRotation.append(out) } else if shown { failures.append("the faulted server was never taken out of rotation") }
    }

    /// How many times more requests a set-up alone had noticed than `medic`'s: `6×`, `Medic: 0`.
    func ratio(to medic: [Double]) -> String {
        guard let affected = Spread(affected), let medic = Spread(medic) else { return "" }
        return medic.median > 0 ? String(format: "%.0f×", affected.median / medic.median) : (affected.median > 0 ? "Medic: 0" : "")
    }
}

/// Polls every 5 ms until the server is out of rotation; with `untilBack`, then until it is back
/// in. Milliseconds from `start` until it went out, nil if it did not within 20 s.
/// `inRotation` answers nil when the balancer could not say this time.
func watchRotation(_ inRotation: () async -> Bool?, from start: ContinuousClock.Instant, untilBack: Bool) async -> Double? {
    var out: Double?
    while ContinuousClock.now < start + .seconds(20) {
        if let now = await inRotation() {
            if out == nil, !now {
                out = (ContinuousClock.now - start).milliseconds
                if !untilBack { break }
            } else if out != nil, now {
                break
            }
        }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return out
}

/// Installs and starts backend units `names[s][i]` on `ports[s][i]` in the test host; the
/// set-ups with Medic beat their heartbeat every 50 ms to `heartbeats` (a path in the host).
func installBackends(_ host: TestHost, names: [[String]], ports: [[Int]], medic: [Bool], heartbeats: String) throws {
    let backend = try Backend.path()
    for (s, units) in names.enumerated() {
        for (name, port) in zip(units, ports[s]) {
            try host.installUnit(name + ".service", """
                [Unit]
                StartLimitIntervalSec=0
                [Service]
                \(medic[s] ? "Environment=NOTIFY_SOCKET=\(heartbeats)" : "")
                ExecStartPre=/bin/rm -f /run/\(name).status
                ExecStart=\(backend) --port \(port) --name \(name) --status-file /run/\(name).status\(medic[s] ? " --heartbeat-ms 50" : "")
                LimitCORE=0
                """)
        }
    }
    _ = try host.runInside(["systemctl", "daemon-reload"])
    _ = try host.runInside(["systemctl", "start"] + names.joined().map { $0 + ".service" })
}
