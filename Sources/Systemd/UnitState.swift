/// What systemd says of a unit at one moment: the Unit and Service properties Medic reads.
/// Every field is optional because a PropertiesChanged signal carries only what changed.
public struct UnitState: Sendable, Equatable, CustomStringConvertible {
    /// `loaded`, `not-found`, `bad-setting`, `error`, `masked`.
    public var loadState: String?
    public var activeState: String?
    public var subState: String?
    /// The service's result: `success`, `exit-code`, `signal`, `core-dump`, `oom-kill`,
    /// `watchdog`, `timeout`, `start-limit-hit`, `resources`, …
    public var result: String?
    public var mainPID: UInt32?
    /// The PID of the last main process, kept after it is gone.
    public var execMainPID: UInt32?
    public var nRestarts: UInt32?
    /// `CLD_EXITED` (1), `CLD_KILLED` (2) or `CLD_DUMPED` (3) for the last main process.
    public var execMainCode: Int32?
    /// Exit status, or signal number when killed.
    public var execMainStatus: Int32?
    /// The 128-bit invocation ID as 32 hex digits.
    public var invocationID: String?
    /// The last `STATUS=` the service sent through sd_notify.
    public var statusText: String?
    /// When the last main process exited (µs since the epoch), 0 if it has not.
    public var execMainExitTimestamp: UInt64?
    /// The units this one cannot run without (`Requires=` and `BindsTo=`).
    public var requires: [String]?
    /// The unit's cgroup, relative to systemd's cgroup root (`/system.slice/web.service`).
    public var controlGroup: String?
    /// systemd's own accounting, where it has it (UINT64_MAX where it does not).
    public var memoryCurrent: UInt64?
    public var cpuUsageNSec: UInt64?
    public var tasksCurrent: UInt64?
    /// `WatchdogSec=` in microseconds (0: no watchdog), and the last ping on CLOCK_MONOTONIC.
    public var watchdogUSec: UInt64?
    public var watchdogTimestampMonotonic: UInt64?
    /// The first command of `ExecStartPre=`, `ExecStart=` or `ExecStartPost=` that failed in
    /// the last start (read with GetAll only: systemd does not send these in signals).
    public var failedCommand: ExecCommandStatus?

    public init(
        loadState: String? = nil, activeState: String? = nil, subState: String? = nil, result: String? = nil,
        mainPID: UInt32? = nil, execMainPID: UInt32? = nil, nRestarts: UInt32? = nil, execMainCode: Int32? = nil,
        execMainStatus: Int32? = nil, invocationID: String? = nil, statusText: String? = nil
    ) {
        self.loadState = loadState
        self.activeState = activeState
        self.subState = subState
        self.result = result
        self.mainPID = mainPID
        self.execMainPID = execMainPID
        self.nRestarts = nRestarts
        self.execMainCode = execMainCode
        self.execMainStatus = execMainStatus
        self.invocationID = invocationID
        self.statusText = statusText
    }

    /// The properties this type reads; the rest of a GetAll is skipped unread.
    static let propertyNames: Set<String> = [
        "LoadState", "ActiveState", "SubState", "Result", "MainPID", "ExecMainPID", "NRestarts", "ExecMainCode",
        "ExecMainStatus", "InvocationID", "StatusText", "ExecMainExitTimestamp", "ControlGroup", "MemoryCurrent",
        "CPUUsageNSec", "TasksCurrent", "WatchdogUSec", "WatchdogTimestampMonotonic", "ExecStartPre", "ExecStart",
        "ExecStartPost", "Requires", "BindsTo",
    ]

    init(properties: [String: PropertyValue]) {
        loadState = properties["LoadState"]?.string
        activeState = properties["ActiveState"]?.string
        subState = properties["SubState"]?.string
        result = properties["Result"]?.string
        mainPID = properties["MainPID"]?.uint.map { UInt32(truncatingIfNeeded: $0) }
        execMainPID = properties["ExecMainPID"]?.uint.map { UInt32(truncatingIfNeeded: $0) }
        nRestarts = properties["NRestarts"]?.uint.map { UInt32(truncatingIfNeeded: $0) }
        execMainCode = properties["ExecMainCode"]?.int.map { Int32(truncatingIfNeeded: $0) }
        execMainStatus = properties["ExecMainStatus"]?.int.map { Int32(truncatingIfNeeded: $0) }
        invocationID = properties["InvocationID"]?.bytes.flatMap { $0.isEmpty ? nil : $0.hexString }
        statusText = properties["StatusText"]?.string
        execMainExitTimestamp = properties["ExecMainExitTimestamp"]?.uint
        controlGroup = properties["ControlGroup"]?.string
        memoryCurrent = properties["MemoryCurrent"]?.uint
        cpuUsageNSec = properties["CPUUsageNSec"]?.uint
        tasksCurrent = properties["TasksCurrent"]?.uint
        watchdogUSec = properties["WatchdogUSec"]?.uint
        watchdogTimestampMonotonic = properties["WatchdogTimestampMonotonic"]?.uint
        for key in ["ExecStartPre", "ExecStart", "ExecStartPost"] where failedCommand == nil {
            failedCommand = properties[key].flatMap { if case .commands(let list) = $0 { list.first(where: \.failed) } else { nil } }
                .map { var command = $0; command.setting = key; return command }
        }
        if properties["Requires"] != nil || properties["BindsTo"] != nil {
            requires = (properties["Requires"]?.strings ?? []) + (properties["BindsTo"]?.strings ?? [])
        }
    }

    /// Fields present in `newer` replace those here; absent ones keep their value.
    public mutating func merge(_ newer: UnitState) {
        loadState = newer.loadState ?? loadState
        activeState = newer.activeState ?? activeState
        subState = newer.subState ?? subState
        result = newer.result ?? result
        mainPID = newer.mainPID ?? mainPID
        execMainPID = newer.execMainPID ?? execMainPID
        nRestarts = newer.nRestarts ?? nRestarts
        execMainCode = newer.execMainCode ?? execMainCode
        execMainStatus = newer.execMainStatus ?? execMainStatus
        invocationID = newer.invocationID ?? invocationID
        statusText = newer.statusText ?? statusText
        execMainExitTimestamp = newer.execMainExitTimestamp ?? execMainExitTimestamp
        requires = newer.requires ?? requires
        controlGroup = newer.controlGroup ?? controlGroup
        memoryCurrent = newer.memoryCurrent ?? memoryCurrent
        cpuUsageNSec = newer.cpuUsageNSec ?? cpuUsageNSec
        tasksCurrent = newer.tasksCurrent ?? tasksCurrent
        watchdogUSec = newer.watchdogUSec ?? watchdogUSec
        watchdogTimestampMonotonic = newer.watchdogTimestampMonotonic ?? watchdogTimestampMonotonic
        failedCommand = newer.failedCommand ?? failedCommand
    }

    /// True when nothing at all was set.
    public var isEmpty: Bool { self == UnitState() }

    public var description: String {
        var parts: [String] = []
        if let loadState { parts.append("LoadState=\(loadState)") }
        if let activeState { parts.append("ActiveState=\(activeState)") }
        if let subState { parts.append("SubState=\(subState)") }
        if let result { parts.append("Result=\(result)") }
        if let mainPID { parts.append("MainPID=\(mainPID)") }
        if let execMainPID { parts.append("ExecMainPID=\(execMainPID)") }
        if let nRestarts { parts.append("NRestarts=\(nRestarts)") }
        if let execMainCode { parts.append("ExecMainCode=\(execMainCode)") }
        if let execMainStatus { parts.append("ExecMainStatus=\(execMainStatus)") }
        if let invocationID { parts.append("InvocationID=\(invocationID)") }
        return parts.joined(separator: " ")
    }
}

/// How one command of a unit's `ExecStartPre=` (or `ExecStart=`, `ExecStartPost=`) last ended.
public struct ExecCommandStatus: Sendable, Equatable, CustomStringConvertible {
    /// The setting it comes from (`ExecStartPre`).
    public var setting = ""
    public var path: String
    public var arguments: [String]
    public var pid: UInt32
    /// `CLD_EXITED` (1), `CLD_KILLED` (2), `CLD_DUMPED` (3); 0 if it has not run.
    public var code: Int32
    /// Exit status, or signal number.
    public var status: Int32

    public init(path: String, arguments: [String], pid: UInt32, code: Int32, status: Int32) {
        self.path = path
        self.arguments = arguments
        self.pid = pid
        self.code = code
        self.status = status
    }

    /// It ran, and exited non-zero or was killed.
    public var failed: Bool { pid != 0 && (code == 2 || code == 3 || (code == 1 && status != 0)) }

    /// `ExecStartPre=/usr/bin/false --x exited with status 1`.
    public var description: String {
        let command = ([path] + arguments.dropFirst()).joined(separator: " ")
        let how = code == 1 ? "exited with status \(status)" : "was killed by signal \(status)"
        return "\(setting)=\(command) \(how)"
    }
}

extension Array where Element == UInt8 {
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Something systemd said on the bus, typed.
public enum BusEvent: Sendable, Equatable {
    /// Some properties of a unit changed (Unit or Service interface).
    case unitChanged(unit: String, state: UnitState)
    /// A job was queued for a unit, and whether this process asked for it (a remedy) or someone
    /// else did (an operator, a deploy).
    case jobNew(id: UInt32, job: String, unit: String, ours: Bool)
    /// A job finished: `result` is `done`, `canceled`, `timeout`, `failed`, `dependency` or `skipped`.
    case jobRemoved(id: UInt32, job: String, unit: String, result: String)
    /// The bus connection was lost; events may have been missed until `.connected`.
    case disconnected(SystemdError)
    /// The connection is (re-)established and subscribed; state must be re-read.
    case connected
}
