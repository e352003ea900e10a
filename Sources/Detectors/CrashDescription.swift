import MedicCore
import Systemd

/// One line that says how a service died, in an operator's words.
enum CrashDescription {
    /// `CLD_EXITED`, `CLD_KILLED`, `CLD_DUMPED` from waitid(2).
    private static let exited: Int32 = 1, killed: Int32 = 2, dumped: Int32 = 3

    static func describe(_ kind: CrashKind, _ state: UnitState) -> String {
        if let failed = state.failedCommand, failed.setting != "ExecStart" || (state.execMainPID ?? 0) == 0 {
            // A command around the main process failed: name it, not a main process that never ran.
            return "\(failed)" + (failed.setting == "ExecStartPre" ? ": the main process was never started" : "")
        }
        let process = state.execMainPID.map { "main process \($0)" } ?? "main process"
        let status = state.execMainStatus ?? 0
        switch kind {
        case .exitCode:
            return "\(process) exited with status \(status)"
        case .signal:
            return "\(process) killed by signal \(status) (\(signalName(status)))"
        case .coreDump:
            return "\(process) dumped core (signal \(status), \(signalName(status)))"
        case .oomKill:
            return "\(process) killed by the OOM killer"
        case .watchdog:
            return "watchdog timeout: the service stopped pinging and was killed"
        case .startLimitHit:
            return "start limit hit: systemd gave up starting the unit"
        case .timeout:
            return "timed out (\(state.subState ?? "unknown phase"))"
        case .other:
            return "failed with result \(state.result ?? "unknown")" + (state.execMainCode == exited ? ", status \(status)" : "")
        }
    }

    private static let signalNames = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ]

    /// `SIGKILL` for 9, as Linux numbers them on x86 and ARM.
    static func signalName(_ number: Int32) -> String {
        guard number >= 1, Int(number) <= signalNames.count else { return "signal \(number)" }
        return "SIG" + signalNames[Int(number) - 1]
    }
}
