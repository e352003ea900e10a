import Posix
import Systemd
import Glibc
import MedicCore

/// Runs the site's own program for an `exec` step: an argument array (no shell), in its own
/// process group, with the incident's facts as `MEDIC_*` environment variables (never spliced
/// into the arguments), in its working directory, as its user, killed with its whole group at
/// the timeout. Its exit code is the result; its output, up to a bound, goes to the audit log.
struct ExecAction {
    let hostName: String

    func run(_ command: ExecCommand, context: StepContext, timeout: Duration) async -> StepOutcome {
        var environment = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
            "MEDIC_TARGET=\(context.target)", "MEDIC_INCIDENT=\(context.incident)", "MEDIC_PLAYBOOK=\(context.playbook.name)",
            "MEDIC_TRIGGER=\(context.trigger)", "MEDIC_OBSERVATION=\(context.observation)", "MEDIC_HOST=\(hostName)",
        ]
        if context.target != TargetSelector.hostName { environment.append("MEDIC_UNIT=\(context.target)") }
        if let pool = context.pool { environment += ["MEDIC_POOL_BACKEND=\(pool.backend)", "MEDIC_POOL_SERVER=\(pool.server)"] }
        var identity: (uid: uid_t, gid: gid_t, groups: [gid_t], home: String)?
        if let user = command.user {
            guard let found = Self.lookUp(user) else { return .failure("no user '\(user)' on this host to run \(command.arguments[0]) as") }
            identity = found
            environment += ["USER=\(user)", "LOGNAME=\(user)", "HOME=\(found.home)"]
        } else {
            environment += ["USER=root", "HOME=/root"]
        }
        let arguments = command.arguments
        let directory = command.workingDirectory
        let limit = command.outputLimit
        let environmentList = environment
        let uid = identity?.uid ?? uid_t.max
        let gid = identity?.gid ?? gid_t.max
        let groups = identity?.groups ?? []
        // The child is waited for on a thread of its own: a script may run for minutes.
        let run = await onThreadOfItsOwn("medic-exec") {
            ProgramRun.run(arguments, environment: environmentList, directory: directory, uid: uid, gid: gid, groups: groups, timeout: timeout, outputLimit: limit)
        }
        var details = ["program": arguments[0], "output": run.output, "output_bytes": String(run.total)]
        if run.total > run.kept { details["output_truncated"] = "kept the first \(run.kept) of \(run.total) bytes" }
        if run.error != 0 {
            return .failure("cannot run \(arguments[0]): \(run.failedCall ?? "?"): \(PosixError.reason(run.error))", details)
        }
        if run.timedOut {
            return .failure("\(arguments[0]) did not finish within \(DurationText.format(timeout)); its process group was killed", details)
        }
        guard let code = run.exitCode else {
            details["signal"] = String(run.signal ?? 0)
            return .failure("\(arguments[0]) was killed by signal \(run.signal ?? 0)", details)
        }
        details["exit_code"] = String(code)
        return code == 0 ? .success("\(arguments[0]) exited 0", details) : .failure("\(arguments[0]) exited with status \(code)", details)
    }

    /// The user's uid, gid, supplementary groups and home, from the passwd and group databases.
    private static func lookUp(_ user: String) -> (uid: uid_t, gid: gid_t, groups: [gid_t], home: String)? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(user, &entry, &buffer, buffer.count, &found) == 0, found != nil else { return nil }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: 64)
        if getgrouplist(user, entry.pw_gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, entry.pw_gid, &groups, &count)
        }
        return (entry.pw_uid, entry.pw_gid, Array(groups.prefix(Int(count))), String(cString: entry.pw_dir))
    }
}
