import Foundation
import Posix
import Glibc
import Synchronization
import Systemd

/// A disposable real systemd: PID 1 of fresh PID, mount, UTS, IPC and cgroup namespaces, booted
/// to a minimal target, with a private /run whose bus socket is reachable from outside.
///
/// Everything it starts is stopped by PID (never by process name) and everything it mounts is
/// unmounted by `destroy()`, which `deinit` also calls, and so does an interrupted tool
/// (`Interruption`). Several can run at once. A host that reboots (systemd exits with 129) is
/// powered on again by the harness, keeping its "disk".
public final class TestHost: Sendable {
    /// The host's name (its hostname, and `container=` for systemd).
    public let name: String
    /// The harness directory: `root/`, `run/`, `units/`, `disk/`, `console`, `console.log`.
    public let directory: String

    private struct State {
        var process: Process?
        var boots = 0
        var lastExitStatus: Int32?
        var destroyed = false
        /// The next reboot leaves the host off (as if it hung in firmware) until `powerOn()`.
        var holdNextReboot = false
    }
    private let state = Mutex(State())
    /// Held while the host is destroyed: a second `destroy()` returns once it is gone.
    private let destruction = Mutex(())
    private let binds: [String]
    private let cgroup: String
    /// The network namespace it runs in, and its address there, when it was given a network.
    public let namespace: String?
    public let address: String?
    private let network: TestNetwork?
    private let bootChanged = BootSignal()

    /// The D-Bus address of the host's system bus, from outside.
    public var busAddress: BusAddress { .address("unix:path=\(directory)/run/dbus/system_bus_socket") }
    /// Unit files here survive the host's reboots (bound at /usr/local/lib/systemd/system).
    public var unitsDirectory: String { directory + "/units" }
    /// The host's /run/systemd/system, seen from outside: unit files here are lost at reboot.
    public var runtimeUnitsDirectory: String { directory + "/run/systemd/system" }
    /// The host's volatile journal, seen from outside.
    public var journalDirectory: String { directory + "/run/log/journal" }
    /// How many times the host has been powered on.
    public var boots: Int { state.withLock { $0.boots } }
    /// The cgroup2 directory that holds everything the host runs.
    public var cgroupDirectory: String { cgroup }

    /// Creates and boots a host, returning once its systemd reports `running` (or `degraded`).
    /// `binds` are paths of this machine made visible inside at the same path (a build
    /// directory under /tmp, which the host otherwise sees as its own fresh tmpfs). Given a
    /// `network`, it runs in a network namespace of its own with an address on it; otherwise
    /// it shares this machine's network.
    public init(name: String = "medic-test", binds: [String] = [], network: TestNetwork? = nil, timeout: Duration = .seconds(20)) throws {
        self.name = name
        self.binds = binds
        self.network = network
        let attached = try network?.attach()
        namespace = attached?.namespace
        address = attached?.address
        var template = Array("/tmp/medic-host-\(name).XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestHostError.setup("mkdtemp: \(PosixError.reason())") }
        directory = String(cString: made)
        cgroup = "/sys/fs/cgroup/unified/testhost-" + (directory as NSString).lastPathComponent
        Interruption.register(self) { [weak self] in self?.destroy() }
        do {
            try prepare()
            try powerOn(timeout: timeout)
        } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    private func prepare() throws {
        let fm = FileManager.default
        for sub in ["root", "run", "units", "disk"] {
            try fm.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true)
        }
        _ = fm.createFile(atPath: directory + "/console", contents: nil)
        // In a network of its own, nothing answers DNS: look names up on the host itself.
        if namespace != nil { _ = fm.createFile(atPath: directory + "/netns", contents: nil) }
        try initScript.write(toFile: directory + "/init.sh", atomically: true, encoding: .utf8)
        try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=512m,mode=0755", "tmpfs", directory + "/disk"])
        try fm.createDirectory(atPath: cgroup, withIntermediateDirectories: true)
    }

    // MARK: Power

    /// Boots the host (again): a fresh /run, the same disk; waits until systemd is running.
    public func powerOn(timeout: Duration = .seconds(20)) throws {
        try launch()
        try waitUntilRunning(timeout: timeout)
    }

    private func launch() throws {
        let fm = FileManager.default
        let run = directory + "/run"
        for entry in (try? fm.contentsOfDirectory(atPath: run)) ?? [] {
            try? fm.removeItem(atPath: run + "/" + entry)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // Join the host's cgroup first, so that --cgroup makes it the namespace's root.
        process.arguments = [
            "-c", #"echo $$ > "$0" && exec "$@""#, cgroup + "/cgroup.procs",
        ] + (namespace.map { ["/usr/bin/nsenter", "--net=/run/netns/\($0)"] } ?? []) + [
            "/usr/bin/unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--cgroup",
            "--propagation", "private", "--kill-child",
            "/bin/bash", directory + "/init.sh", directory, name,
        ] + binds
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = nil
        process.environment = environment
        _ = fm.createFile(atPath: directory + "/console.log", contents: nil)
        let log = FileHandle(forWritingAtPath: directory + "/console.log")
        log?.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [weak self] finished in
            // unshare reports how its child ended as 128+signal, by exit code or by dying of it.
            let signalled = finished.terminationReason == .uncaughtSignal
            self?.exited(signalled ? 128 + finished.terminationStatus : finished.terminationStatus)
        }
        try state.withLock { state in
            if state.destroyed { throw TestHostError.setup("host \(name) was destroyed") }
            try process.run()
            state.process = process
            state.boots += 1
            state.lastExitStatus = nil
        }
    }

    /// unshare's exit: 129 after a reboot (power on again), 130 after power-off, 137 if killed.
    private func exited(_ status: Int32) {
        let rebooted = state.withLock { state -> Bool in
            state.process = nil
            state.lastExitStatus = status
            defer { if status == 129 { state.holdNextReboot = false } }
            return status == 129 && !state.destroyed && !state.holdNextReboot
        }
        if rebooted { try? launch() }
        bootChanged.broadcast()
    }

    /// Makes the host's next reboot end powered off, until `powerOn()`: for a test that needs
    /// something done between the two boots.
    public func powerOffOnNextReboot() {
        state.withLock { $0.holdNextReboot = true }
    }

    /// Waits until the host is off; false if it is still on after `timeout`.
    public func waitForPowerOff(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while state.withLock({ $0.process != nil }) {
            if ContinuousClock.now >= deadline { return false }
            bootChanged.wait(upTo: 0.05)
        }
        return true
    }

    /// Polls the host's bus until systemd reports `running` or `degraded`.
    public func waitUntilRunning(timeout: Duration = .seconds(20)) throws {
        let deadline = ContinuousClock.now + timeout
        var last = "no bus yet"
        while ContinuousClock.now < deadline {
            if let status = state.withLock({ $0.lastExitStatus }), state.withLock({ $0.process == nil }) {
                throw TestHostError.boot("systemd exited with \(status) while booting; see \(directory)/console.log")
            }
            do {
                last = try SystemdManager.systemState(at: busAddress)
                if last == "running" || last == "degraded" { return }
            } catch {
                last = "\(error)"
            }
            usleep(20_000)
        }
        throw TestHostError.boot("host \(name) not running after \(timeout) (last: \(last)); see \(directory)/console.log")
    }

    /// Waits until the host has booted `count` times in all and is running again.
    public func waitForBoot(_ count: Int, timeout: Duration = .seconds(20)) throws {
        let deadline = ContinuousClock.now + timeout
        while boots < count {
            if ContinuousClock.now >= deadline { throw TestHostError.boot("host \(name) did not boot a \(count)th time") }
            bootChanged.wait(upTo: 0.05)
        }
        try waitUntilRunning(timeout: deadline - ContinuousClock.now)
    }

    /// systemd's PID as seen from this machine (the child of the unshare process).
    public var systemdPID: pid_t? {
        guard let unshare = state.withLock({ $0.process?.processIdentifier }) else { return nil }
        let children = WholeFile.text("/proc/\(unshare)/task/\(unshare)/children") ?? ""
        return children.split(separator: " ").first.flatMap { pid_t($0) }
    }

    /// Powers the host off cleanly (SIGRTMIN+4 to its systemd) and waits for it to end; kills
    /// it if it does not end within `timeout`. Returns unshare's exit status.
    @discardableResult
    public func powerOff(timeout: Duration = .seconds(5)) -> Int32? {
        guard let process = state.withLock({ $0.process }) else { return state.withLock { $0.lastExitStatus } }
        if let pid = systemdPID { Glibc.kill(pid, SIGRTMIN_PLUS_4) }
        if !waitForExit(of: process, timeout: timeout) {
            Glibc.kill(process.processIdentifier, SIGKILL)
            _ = waitForExit(of: process, timeout: .seconds(5))
        }
        return state.withLock { $0.lastExitStatus }
    }

    private func waitForExit(of process: Process, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning || state.withLock({ $0.process === process }) {
            if ContinuousClock.now >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Stops the host if it runs (by PID), removes its cgroups deepest first, unmounts its disk
    /// and deletes its directory. Safe to call more than once, from more than one thread.
    public func destroy() {
        destruction.withLock { _ in
            let alreadyDestroyed = state.withLock { state -> Bool in
                defer { state.destroyed = true }
                return state.destroyed
            }
            if alreadyDestroyed { return }
            defer { Interruption.unregister(self) }
            powerOff()
            removeCgroups()
            let disk = directory + "/disk"
            if isMountPoint(disk) { try? runProgram("/bin/umount", ["-l", disk]) }
            if !isMountPoint(disk) { try? FileManager.default.removeItem(atPath: directory) }
            if let namespace { network?.detach(namespace) }
        }
    }

    /// Retries for up to 5 s: a cgroup cannot go while a process in it is still being reaped.
    private func removeCgroups() {
        let fm = FileManager.default
        for _ in 0..<250 {
            guard fm.fileExists(atPath: cgroup) else { return }
            var dirs: [String] = []
            if let walker = fm.enumerator(atPath: cgroup) {
                while let entry = walker.nextObject() as? String {
                    var isDir: ObjCBool = false
                    if fm.fileExists(atPath: cgroup + "/" + entry, isDirectory: &isDir), isDir.boolValue {
                        dirs.append(cgroup + "/" + entry)
                    }
                }
            }
            for dir in dirs.sorted(by: { $0.count > $1.count }) { rmdir(dir) }
            if rmdir(cgroup) == 0 { return }
            usleep(20_000)
        }
    }

    // MARK: Units

    /// Writes a unit file (or a drop-in, `NAME.service.d/FILE.conf`) into the host: into its
    /// /run/systemd/system (lost at reboot), or
    /// `persistent` into the directory bound at /usr/local/lib/systemd/system. Call
    /// `SystemdManager.reload()` afterwards.
    public func installUnit(_ unitName: String, _ contents: String, persistent: Bool = false) throws {
        let path = (persistent ? unitsDirectory : runtimeUnitsDirectory) + "/" + unitName
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Runs a command inside the host (in its namespaces, as its systemd sees the world), e.g.
    /// `["systemctl", "daemon-reexec"]`, and returns its output; throws if it fails.
    @discardableResult
    public func runInside(_ command: [String]) throws -> String {
        guard let pid = systemdPID else { throw TestHostError.command("host \(name) is not running") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["-t", String(pid), "-m", "-p", "-u", "-i", "-C"] + (namespace != nil ? ["-n"] : []) + ["--"] + command
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestHostError.command("\(command.joined(separator: " ")) in \(name) exited \(process.terminationStatus): \(text)")
        }
        return text
    }

    /// The PIDs (as seen from this machine) of a unit's processes, read from its cgroup. An
    /// instance of a template (`acc@1.service`) is in its template's slice, `system-acc.slice`.
    public func processes(ofUnit unitName: String, slice: String? = nil) -> [pid_t] {
        let slice = slice ?? (unitName.split(separator: "@").count == 2
            ? "system.slice/system-\(unitName.split(separator: "@")[0].replacingOccurrences(of: "-", with: "\\x2d")).slice" : "system.slice")
        let text = WholeFile.text("\(cgroup)/\(slice)/\(unitName)/cgroup.procs") ?? ""
        return text.split(separator: "\n").compactMap { pid_t($0) }
    }

    private func isMountPoint(_ path: String) -> Bool {
        let mounts = WholeFile.text("/proc/self/mountinfo") ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst(4).first.map(String.init) == path }
    }
}

/// What went wrong with a test host.
public enum TestHostError: Error, CustomStringConvertible {
    case setup(String)
    case boot(String)
    case command(String)

    public var description: String {
        switch self {
        case .setup(let text): "test host setup failed: \(text)"
        case .boot(let text): "test host did not boot: \(text)"
        case .command(let text): "command failed: \(text)"
        }
    }
}

/// SIGRTMIN+4: systemd's "power off" signal.
let SIGRTMIN_PLUS_4: Int32 = __libc_current_sigrtmin() + 4

/// Runs a program to its end and returns its output (stdout and stderr together); throws,
/// with the output, if it fails. `environment`, given, replaces this process's own.
@discardableResult
public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TestHostError.command("\(executable) \(arguments.joined(separator: " ")): \(output)")
    }
    return output
}

/// Wakes those waiting for a host to boot again.
final class BootSignal: Sendable {
    private let condition = NSCondition()
    func broadcast() { condition.lock(); condition.broadcast(); condition.unlock() }
    func wait(upTo seconds: Double) {
        condition.lock()
        _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        condition.unlock()
    }
}
