import AsyncHTTPClient
import MedicCore
import Glibc
import Systemd

/// Runs every step kind that acts on the world, each through its action: unit jobs and signals
/// over the bus, the load balancer's pool, reboot, the site's programs, notifications and
/// evidence.
public struct ActionRunner: StepRunner {
    private let manager: SystemdManager
    private let pool: PoolAction
    private let lookup: LoadBalancerPool
    private let journalDirectory: String?
    private let hostName: String
    private let client: HTTPClient
    private let restarts: RestartNotices
    private let budgets: (any FleetBudgets)?
    private let poolHolds: (any FleetPoolHolds)?

    /// `journalDirectory` is where `collect` reads the journal (nil: this host's own);
    /// `restarts` hears of every target a restart or start brought up again; `budgets` are the
    /// fleet's (nil: a host in no fleet, whose budget is itself alone), and so is `poolHolds`, what
    /// the fleet took out of its pools for lost peers.
    public init(
        manager: SystemdManager, pool: PoolAction, balancer: LoadBalancerPool = Balancers(), journalDirectory: String? = nil,
        hostName: String = ActionRunner.localHostName(), client: HTTPClient = .shared, restarts: RestartNotices = RestartNotices(),
        budgets: (any FleetBudgets)? = nil, poolHolds: (any FleetPoolHolds)? = nil
    ) {
        self.restarts = restarts
        self.budgets = budgets
        self.poolHolds = poolHolds
        self.manager = manager
        self.pool = pool
        lookup = balancer
        self.journalDirectory = journalDirectory
        self.hostName = hostName
        self.client = client
    }

    public func run(_ step: Step, context: StepContext) async -> StepOutcome {
        let target = context.target
        do {
            switch step.action {
            case .restart, .start:
                let outcome = try await JobAction(manager: manager, method: step.kind == .restart ? .restart : .start)
                    .run(unit: target, timeout: step.timeout, unitDown: context.unitDown)
                if outcome.succeeded { restarts.post(target) }
                return outcome
            case .reload:
                return try await JobAction(manager: manager, method: .reload).run(unit: target, timeout: step.timeout)
            case .stop:
                return try await JobAction(manager: manager, method: .stop).run(unit: target, timeout: step.timeout)
            case .kill(let signal):
                try await manager.killUnit(target, signal: signal)
                return .success("sent signal \(signal) to the main process")
            case .pool(let state, let budget):
                let members = context.poolMembers
                guard !members.isEmpty else { return .failure("\(target) has no pool in playbook \(context.playbook.name)") }
                let (facts, refusal) = await takeSlot(budget, context: context)
                if let refusal { return refusal }
                var outcomes: [StepOutcome] = []
                for member in members {
                    outcomes.append(await runPool(state, member: member, context: context, timeout: step.timeout))
                }
                var outcome = StepOutcome.combined(outcomes)
                outcome.details.merge(facts) { own, _ in own }
                // On a fleet peer's servers: under the lock whose revision opened the incident.
                if let token = context.fencingToken { outcome.details[.fencingToken] = token }
                return outcome
            case .cache(let ban):
                return await CacheAction(cli: VarnishCLI()).run(ban: ban, members: context.poolMembers)
            case .reboot(_, let budget):
                let (facts, refusal) = await takeSlot(budget, context: context)
                if let refusal { return refusal }
                var outcome = await RebootAction(manager: manager).run(timeout: step.timeout)
                outcome.details.merge(facts) { own, _ in own }
                return outcome
            case .exec(let command):
                return await ExecAction(hostName: hostName).run(command, context: context, timeout: step.timeout)
            case .notify(let recipient, let message):
                return await NotifyAction(client: client, hostName: hostName).run(recipient: recipient, message: message, context: context)
            case .collect(let lines):
                return await CollectAction(manager: manager, pool: lookup, journalDirectory: journalDirectory).run(journalLines: lines, context: context)
            case .verify, .wait:
                return .failure("\(step.name) is run by the engine, not by an action")
            }
        } catch {
            return .failure("\(error)")
        }
    }

    /// Takes a slot of the step's fleet budget before it runs (none: nothing to take): the facts
    /// to record beside its result, or its refusal (no slot within the wait, or etcd out of reach).
    private func takeSlot(_ budget: FleetBudget?, context: StepContext) async -> (facts: [String: String], refusal: StepOutcome?) {
        guard let budget else { return ([:], nil) }
        var facts = ["budget": budget.name]
        guard let budgets else {
            facts["budget_slot"] = "none: this host is in no fleet"
            return (facts, nil)
        }
        switch await budgets.acquire(budget, incident: context.incident, target: context.target) {
        case .refused(let why):
            return (facts, .refused(by: "fleet-budget", why, facts))
        case .granted(let slot, let revision, let waited):
            facts["budget_slot"] = String(slot)
            facts[.fencingToken] = String(revision)
            facts["budget_waited_ms"] = String(waited.milliseconds)
            return (facts, nil)
        }
    }

    /// A pool step on one member. On a fleet peer's server the fleet's memory is used and kept:
    /// a server another host of the fleet took out (and died before returning) is Medic's to
    /// return; one an operator took out stays out.
    private func runPool(_ state: PoolState, member: PoolMembership, context: StepContext, timeout: Duration) async -> StepOutcome {
        guard let poolHolds, context.target.hasPrefix(TargetSelector.peerPrefix) else {
            return await pool.run(state, member: member, unitDown: context.unitDown, timeout: timeout)
        }
        let peer = String(context.target.dropFirst(TargetSelector.peerPrefix.count))
        let server = PoolAction.key(member)
        if await poolHolds.isHeld(server, of: peer) == true { await pool.adopt(server) }
        let outcome = await pool.run(state, member: member, unitDown: context.unitDown, timeout: timeout)
        guard outcome.succeeded else { return outcome }
        if state == .ready {
            if outcome.details["pool_changed"] == "true" { await poolHolds.returned(server, of: peer) }
        } else if outcome.details[.poolHeld] == "true" {
            await poolHolds.taken(server, of: peer, incident: context.incident, fencingToken: context.fencingToken)
        }
        return outcome
    }

    /// This host's name, for notifications and the programs `exec` runs.
    public static func localHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        return String(cString: buffer)
    }
}
