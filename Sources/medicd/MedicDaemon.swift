import ArgumentParser
import Daemon
import Foundation
import Logging
import MedicCore
import Playbooks
import ServiceLifecycle
import Posix

/// medicd: watches systemd units, runs playbooks when they fail, and audits everything.
@main
struct MedicDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medicd",
        abstract: "Medic's daemon: detects crashed units over systemd's bus and heals them by playbook.",
        discussion: """
            Reads its settings from /etc/medic/medic.yaml (or --config; each flag overrides the \
            file), loads every *.yaml playbook in the playbook directory, watches each target unit \
            over the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured), runs the matching playbook \
            when a unit crashes, and records every observation, decision, step intent and result \
            in STATE/audit.sqlite. Sends READY=1 once every target is watched; SIGHUP reloads the \
            config and playbooks (an invalid set is refused and the old one kept); SIGTERM stops \
            cleanly. Prometheus metrics are served at http://127.0.0.1:9466/metrics.
            """,
        version: MedicVersion.string)

    @Option(name: .long, help: "The config file (default: \(DaemonConfig.defaultPath), when it exists). Each flag below overrides it.")
    var config: String?

    @Option(name: .long, help: "Directory of playbooks (*.yaml) (default: /etc/medic/playbooks).")
    var playbooks: String?

    @Option(name: .long, help: "State directory; the audit log is STATE/audit.sqlite (default: /var/lib/medic).")
    var state: String?

    @Option(name: .long, help: "D-Bus address of the system bus (default: the system bus).")
    var bus: String?

    @Option(name: .long, help: "Runtime directory; the heartbeat socket is RUNTIME/heartbeat.sock (default: /run/medic).")
    var runtime: String?

    @Option(name: .long, help: "Read the journal from this directory instead of the local journal (e.g. a container's /run/log/journal).")
    var journal: String?

    @Option(name: .long, help: "How often resources are sampled (default: 5s).")
    var sampleInterval: String?

    @Option(name: .long, help: "Where systemd's ControlGroup= paths are found in the cgroup v2 tree (default: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).")
    var cgroupRoot: String?

    @Flag(name: .long, help: "Record what would be done and do nothing.")
    var dryRun = false

    @Option(name: .long, help: "The control socket (default: RUNTIME/control.sock).")
    var controlSocket: String?

    @Option(name: .long, help: "Group that may read medicd's status through the control socket (default: root).")
    var controlGroup: String?

    @Option(name: .long, help: "Group that may also change what Medic does (silence, pause, resume, run, reload); root always may.")
    var adminGroup: String?

    @Option(name: .long, help: "Serve Prometheus metrics on HOST:PORT, or off (default: 127.0.0.1:9466).")
    var metricsListen: String?

    @Flag(name: .long, help: "Allow --metrics-listen on an address other than loopback (the page has no authentication).")
    var metricsPublic = false

    @Option(name: .long, help: "Keep audit records this long; older ones are pruned, the chain stays verifiable (default: 90d).")
    var retainFor: String?

    @Option(name: .long, help: "Keep the audit log under this size, pruning the oldest records beyond it (default: 1GiB).")
    var retainSize: String?

    /// The flags, checked and parsed.
    func overrides() throws -> FlagOverrides {
        var flags = FlagOverrides(
            playbooks: playbooks, state: state, runtime: runtime, journal: journal, bus: bus, dryRun: dryRun, controlSocket: controlSocket,
            controlGroup: controlGroup, adminGroup: adminGroup, metricsListen: metricsListen, metricsPublic: metricsPublic, cgroupRoot: cgroupRoot)
        if let retainFor {
            guard let age = DurationText.parse(retainFor), age >= DaemonConfig.minimumRetainFor else {
                throw ValidationError("--retain-for '\(retainFor)' must be a duration of at least 1h, e.g. 90d")
            }
            flags.retainFor = age
        }
        if let retainSize {
            guard let size = Quantity.parseSize(retainSize), size >= Double(DaemonConfig.minimumRetainSize) else {
                throw ValidationError("--retain-size '\(retainSize)' must be a size of at least 1MiB, e.g. 1GiB")
            }
            flags.retainSize = Int64(size)
        }
        if let sampleInterval {
            guard let interval = DurationText.parse(sampleInterval), interval >= DaemonConfig.minimumSampleInterval else {
                throw ValidationError("--sample-interval '\(sampleInterval)' must be a duration of at least 50ms, e.g. 5s")
            }
            flags.sampleInterval = interval
        }
        if let metricsListen, metricsListen != "off" {
            guard let address = ListenAddress(metricsListen) else {
                throw ValidationError("--metrics-listen '\(metricsListen)' must be HOST:PORT (e.g. 127.0.0.1:9466) or off")
            }
            if !address.isLoopback, !metricsPublic {
                throw ValidationError("--metrics-listen \(metricsListen) is not a loopback address and the metrics page has no authentication; add --metrics-public to serve it there anyway")
            }
        }
        for (flag, name) in [("--control-group", controlGroup), ("--admin-group", adminGroup)] {
            if let name, getgrnam(name) == nil { throw ValidationError("\(flag) '\(name)': no such group on this host") }
        }
        return flags
    }

    func validate() throws {
        _ = try overrides()
    }

    func run() async throws {
        HeapRelease.configure()
        await BinaryPages.mapOnlyWhatRuns()
        // A broken pipe (a log stream, a peer gone) is an error of that write, not medicd's end.
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { StdoutLogHandler(label: $0) }
        let logger = Logger(label: "medicd")
        let source = SettingsSource(configFlag: config, flags: try overrides())
        let daemon: Daemon
        do {
            daemon = try await Daemon(source: source, logger: logger)
        } catch {
            throw fatal(error.description)
        }
        let group = ServiceGroup(configuration: .init(services: daemon.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            // A service gave up, or the group could not run: medicd exits non-zero, even if a
            // service does not stop.
            logger.critical("medicd stops: \(error)")
            FatalExit.arm(after: .seconds(10))
            throw ExitCode(1)
        }
    }

    /// Says why medicd cannot start, on stderr, and gives the exit code for it.
    private func fatal(_ message: String) -> ExitCode {
        StandardStream.write("medicd: \(message)\n", to: STDERR_FILENO)
        return ExitCode(1)
    }
}
