import Glibc

/// systemd's Manager and units over a `SystemBus`: the operations Medic needs, typed.
public struct SystemdManager: Sendable {
    static let destination = "org.freedesktop.systemd1"
    static let managerPath = "/org/freedesktop/systemd1"
    static let managerInterface = "org.freedesktop.systemd1.Manager"
    static let unitInterface = "org.freedesktop.systemd1.Unit"
    static let serviceInterface = "org.freedesktop.systemd1.Service"
    static let propertiesInterface = "org.freedesktop.DBus.Properties"

    /// The bus this manager talks over.
    public let bus: SystemBus

    public init(bus: SystemBus) { self.bus = bus }

    /// How a unit job ended.
    public enum JobOutcome: Sendable, Equatable {
        /// JobRemoved arrived: `done`, `canceled`, `timeout`, `failed`, `dependency`, `skipped`.
        case finished(String)
        /// The job did not finish in the time allowed.
        case timedOut
    }

    /// A job systemd queued for another unit beside the one asked for: a restart propagated to
    /// the units that `Requires=` the restarted one, a stop of what `BindsTo=` it.
    public struct AffectedJob: Sendable, Equatable, CustomStringConvertible {
        public var id: UInt32
        public var unit: String
        /// `restart`, `stop`, `start`, `try-restart`, …
        public var type: String

        public var description: String { "\(unit) \(type) (job \(id))" }
    }

    /// How a unit job ended, with its id and the jobs systemd queued beside it.
    public struct JobRun: Sendable, Equatable {
        public var id: UInt32
        public var outcome: JobOutcome
        public var affected: [AffectedJob]
    }

    // MARK: Manager methods

    /// The object path of a loaded unit; throws (`org.freedesktop.systemd1.NoSuchUnit`) if the
    /// unit is not loaded. `loadUnit` loads it instead.
    public func getUnit(_ name: String) async throws -> String {
        try await bus.perform { loop in
            try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                member: "GetUnit", arguments: [.string(name)]
            ).readObjectPath()
        }
    }

    /// The names of loaded units matching any of the globs (ListUnitsByPatterns).
    public func listUnits(matching patterns: [String]) async throws -> [String] {
        try await bus.perform { loop in
            let reply = try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                member: "ListUnitsByPatterns", arguments: [.strings([]), .strings(patterns)])
            var names: [String] = []
            try reply.enter("a", "(ssssssouso)")
            while try reply.enter("r", "ssssssouso") {
                names.append(try reply.readString())
                try reply.skip("sssssouso")
                try reply.exit()
            }
            try reply.exit()
            return names
        }
    }

    /// The load, active and sub states of the named units, loading those not loaded, in one
    /// call (ListUnitsByNames).
    public func listUnits(named names: [String]) async throws -> [String: UnitState] {
        if names.isEmpty { return [:] }
        return try await bus.perform { loop in
            let reply = try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                member: "ListUnitsByNames", arguments: [.strings(names)])
            var states: [String: UnitState] = [:]
            try reply.enter("a", "(ssssssouso)")
            while try reply.enter("r", "ssssssouso") {
                let name = try reply.readString()
                _ = try reply.readString()
                states[name] = UnitState(loadState: try reply.readString(), activeState: try reply.readString(), subState: try reply.readString())
                try reply.skip("souso")
                try reply.exit()
            }
            try reply.exit()
            return states
        }
    }

    /// Loads the unit (if not loaded) and returns its object path.
    @discardableResult
    public func loadUnit(_ name: String) async throws -> String {
        try await bus.perform { loop in
            try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                member: "LoadUnit", arguments: [.string(name)]
            ).readObjectPath()
        }
    }

    /// Reads the unit's Unit and Service properties (loading the unit first).
    public func state(of unit: String) async throws -> UnitState {
        try await states(of: [unit])[unit] ?? UnitState()
    }

    /// Reads one string property of the Manager, e.g. `SystemState`.
    public func managerProperty(_ name: String) async throws -> String {
        try await bus.perform { loop in
            let reply = try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.propertiesInterface,
                member: "Get", arguments: [.string(Self.managerInterface), .string(name)])
            switch try reply.readVariant() {
            case .string(let s): return s
            case .uint(let v): return String(v)
            case .int(let v): return String(v)
            case .bool(let b): return String(b)
            default: return ""
            }
        }
    }

    /// Starts the unit and waits for its job to finish.
    public func startUnit(_ name: String, mode: String = "replace", timeout: Duration = .seconds(90)) async throws -> JobOutcome {
        try await runJob("start", unit: name, mode: mode, timeout: timeout).outcome
    }

    /// Stops the unit and waits for its job to finish.
    public func stopUnit(_ name: String, mode: String = "replace", timeout: Duration = .seconds(90)) async throws -> JobOutcome {
        try await runJob("stop", unit: name, mode: mode, timeout: timeout).outcome
    }

    /// Restarts the unit (starts it if it is not running) and waits for its job to finish.
    public func restartUnit(_ name: String, mode: String = "replace", timeout: Duration = .seconds(90)) async throws -> JobOutcome {
        try await runJob("restart", unit: name, mode: mode, timeout: timeout).outcome
    }

    /// Reloads the unit's configuration (ExecReload) and waits for its job to finish.
    public func reloadUnit(_ name: String, mode: String = "replace", timeout: Duration = .seconds(90)) async throws -> JobOutcome {
        try await runJob("reload", unit: name, mode: mode, timeout: timeout).outcome
    }

    /// Queues a job of `type` (`start`, `stop`, `restart`, `reload`, …) for the unit through
    /// EnqueueUnitJob and waits for it to finish; returns how it ended and the jobs systemd
    /// queued for other units beside it (which it does not wait for).
    public func runJob(_ type: String, unit: String, mode: String = "replace", timeout: Duration = .seconds(90)) async throws -> JobRun {
        try await bus.performDeferred { loop, complete in
            do {
                let reply = try loop.requireConnection().call(
                    destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                    member: "EnqueueUnitJob", arguments: [.string(unit), .string(type), .string(mode)])
                let id = try reply.readBasic("u", as: UInt32.self)
                let job = try reply.readObjectPath()
                try reply.skip("sos")
                var affected: [AffectedJob] = []
                var paths: [String] = []
                try reply.enter("a", "(uosos)")
                while try reply.enter("r", "uosos") {
                    let other = try reply.readBasic("u", as: UInt32.self)
                    let path = try reply.readObjectPath()
                    let name = try reply.readString()
                    _ = try reply.readObjectPath()
                    let kind = try reply.readString()
                    try reply.exit()
                    if other != id {
                        affected.append(AffectedJob(id: other, unit: name, type: kind))
                        paths.append(path)
                    }
                }
                try reply.exit()
                loop.claim(jobs: paths)
                // Registered on the bus thread before any further message is dispatched, so the
                // job's JobRemoved cannot be missed.
                loop.addWaiter(.job(path: job), timeoutUSec: timeout.microseconds) { outcome in
                    switch outcome {
                    case .resolved(let result): complete(.success(JobRun(id: id, outcome: .finished(result), affected: affected)))
                    case .timedOut: complete(.success(JobRun(id: id, outcome: .timedOut, affected: affected)))
                    case .failed(let error): complete(.failure(error))
                    }
                }
            } catch {
                complete(.failure(error))
            }
        }
    }

    /// Queues a job to start the unit without waiting for it: for `reboot.target` in
    /// `replace-irreversibly` mode, whose job outlives the bus connection. Returns the job's path.
    @discardableResult
    public func enqueueStart(_ name: String, mode: String) async throws -> String {
        try await bus.perform { loop in
            try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                member: "StartUnit", arguments: [.string(name), .string(mode)]
            ).readObjectPath()
        }
    }

    /// Which boot the manager is in: the kernel's boot ID with the moment (CLOCK_MONOTONIC) the
    /// manager started userspace. It changes on every reboot, also for a systemd in a
    /// container, where the kernel's boot ID stays the same.
    public func bootIdentity() async throws -> String {
        let started = try await managerProperty("UserspaceTimestampMonotonic")
        return "\(Self.kernelBootID())/\(started)"
    }

    /// The kernel's boot ID, without dashes, as the journal writes it.
    public static func kernelBootID() -> String {
        guard let file = fopen("/proc/sys/kernel/random/boot_id", "r") else { return "unknown" }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, 64, file) != nil else { return "unknown" }
        return String(cString: buffer).filter { $0.isHexDigit }
    }

    /// Sends a signal to the unit's processes (`who`: `main`, `control` or `all`).
    public func killUnit(_ name: String, who: String = "main", signal: Int32) async throws {
        try await bus.perform { loop in
            _ = try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                member: "KillUnit", arguments: [.string(name), .string(who), .int32(signal)])
        }
    }

    /// Reloads systemd's unit files (`systemctl daemon-reload`).
    public func reload() async throws {
        try await bus.perform { loop in
            _ = try loop.requireConnection().call(
                destination: Self.destination, path: Self.managerPath, interface: Self.managerInterface,
                member: "Reload")
        }
    }

    /// Waits until the unit's ActiveState satisfies `until`, checking its current state first.
    /// Returns the state that satisfied it, or nil if `timeout` passed first.
    public func waitForActiveState(
        of unit: String, timeout: Duration, until: @escaping @Sendable (String) -> Bool
    ) async throws -> String? {
        try await bus.performDeferred { loop, complete in
            do {
                let path = UnitPath.path(ofUnit: unit)
                let reply = try loop.requireConnection().call(
                    destination: Self.destination, path: path, interface: Self.propertiesInterface,
                    member: "Get", arguments: [.string(Self.unitInterface), .string("ActiveState")])
                if let current = try reply.readVariant()?.string, until(current) {
                    complete(.success(current))
                    return
                }
                loop.addWaiter(.activeState(unit: unit, until: until), timeoutUSec: timeout.microseconds) { outcome in
                    switch outcome {
                    case .resolved(let state): complete(.success(state))
                    case .timedOut: complete(.success(nil))
                    case .failed(let error): complete(.failure(error))
                    }
                }
            } catch {
                complete(.failure(error))
            }
        }
    }
}

extension Duration {
    /// Whole microseconds, rounded down, never negative.
    var microseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        return UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
    }
}

extension SystemdManager {
    /// Reads the Manager's `SystemState` (`initializing`, `starting`, `running`, `degraded`,
    /// `stopping`, …) over a short-lived connection of its own, without a bus thread: for
    /// harnesses that wait for a systemd to come up.
    public static func systemState(at address: BusAddress) throws(SystemdError) -> String {
        let connection = try BusConnection(address: address)
        let reply = try connection.call(
            destination: destination, path: managerPath, interface: propertiesInterface,
            member: "Get", arguments: [.string(managerInterface), .string("SystemState")],
            timeoutUSec: 2_000_000)
        return try reply.readVariant()?.string ?? ""
    }
}
