import CSystemd

extension SystemdManager {
    /// How many calls are in flight at once: under the system bus's default
    /// `max_replies_per_connection` (128 in dbus-daemon's system.conf).
    static let readWindow = 64

    /// Reads the Unit and Service properties of many units in one pass over the bus: the calls
    /// are sent without waiting for each other (up to `readWindow` in flight), so systemd
    /// answers them back to back and 1,000 units cost about what a few did one at a time.
    /// Reading a unit's object loads the unit, as `LoadUnit` does (a unit that does not exist
    /// reads as `LoadState=not-found`). Throws the first failure, naming its unit.
    public func states(of units: [String]) async throws -> [String: UnitState] {
        try await read(UnitRead.full, of: units)
    }

    /// Reads `reads` of every unit in one pass over the bus (see `states(of:)`); each unit's
    /// state has only what was read. Reads of the Service interface are made of services only.
    public func read(_ reads: [UnitRead], of units: [String]) async throws -> [String: UnitState] {
        let units = Array(Set(units))
        if units.isEmpty || reads.isEmpty { return [:] }
        return try await bus.performDeferred { loop, complete in
            let calls = units.flatMap { unit in reads.filter { $0.applies(to: unit) }.map { (unit, $0) } }
            UnitStateBatch(loop: loop, calls: calls, complete: complete).sendMore()
        }
    }
}

/// One read of a unit's properties over the bus.
public enum UnitRead: Sendable, Equatable {
    /// Every property of an interface (`GetAll`); of them, those `UnitState` keeps.
    case all(interface: String)
    /// One property (`Get`): systemd computes only it.
    case property(interface: String, name: String)

    /// Every property of the Service interface.
    public static let wholeService = UnitRead.all(interface: SystemdManager.serviceInterface)
    /// Every property of the Unit and Service interfaces.
    public static let full: [UnitRead] = [.all(interface: SystemdManager.unitInterface), wholeService]

    /// A property of the Unit interface.
    public static func unit(_ name: String) -> UnitRead { .property(interface: SystemdManager.unitInterface, name: name) }
    /// A property of the Service interface.
    public static func service(_ name: String) -> UnitRead { .property(interface: SystemdManager.serviceInterface, name: name) }

    /// Whether the read is made of this unit: the Service interface only exists on services.
    func applies(to unit: String) -> Bool {
        switch self {
        case .all(let interface), .property(let interface, _): interface != SystemdManager.serviceInterface || unit.hasSuffix(".service")
        }
    }

    var member: String {
        if case .all = self { "GetAll" } else { "Get" }
    }

    var arguments: [BusArgument] {
        switch self {
        case .all(let interface): [.string(interface)]
        case .property(let interface, let name): [.string(interface), .string(name)]
        }
    }
}

/// One `states(of:)` read in progress, confined to the bus thread: which calls are left to
/// send, how many are in flight, and what came back.
final class UnitStateBatch: @unchecked Sendable {
    private let loop: BusLoop
    private var unsent: [(unit: String, read: UnitRead)]
    private var inFlight = 0
    /// What each unit's replies said, gathered before it is read as one state (a unit's
    /// `Requires` and `BindsTo` may come in separate replies, and make one list).
    private var properties: [String: [String: PropertyValue]] = [:]
    private var failure: SystemdError?
    private var complete: ((Result<[String: UnitState], Error>) -> Void)?

    init(loop: BusLoop, calls: [(unit: String, read: UnitRead)], complete: @escaping (Result<[String: UnitState], Error>) -> Void) {
        self.loop = loop
        unsent = calls.reversed()
        self.complete = complete
    }

    /// One call: the batch it belongs to, what it reads, and whether its reply came.
    private final class Call {
        let batch: UnitStateBatch
        let unit: String
        let read: UnitRead
        var answered = false
        init(batch: UnitStateBatch, unit: String, read: UnitRead) {
            self.batch = batch
            self.unit = unit
            self.read = read
        }
    }

    /// Sends calls until the window is full or none are left; completes when all are answered.
    func sendMore() {
        while failure == nil, inFlight < SystemdManager.readWindow, let (unit, read) = unsent.popLast() {
            let call = Unmanaged.passRetained(Call(batch: self, unit: unit, read: read))
            do {
                try loop.requireConnection().callAsync(
                    destination: SystemdManager.destination, path: UnitPath.path(ofUnit: unit),
                    interface: SystemdManager.propertiesInterface, member: read.member, arguments: read.arguments,
                    handler: { message, userdata, _ in
                        guard let message, let userdata else { return 0 }
                        let call = Unmanaged<Call>.fromOpaque(userdata).takeUnretainedValue()
                        call.answered = true
                        call.batch.answer(call.unit, call.read, BusMessage(borrowing: message))
                        return 0
                    },
                    destroy: { userdata in
                        guard let userdata else { return }
                        let call = Unmanaged<Call>.fromOpaque(userdata).takeRetainedValue()
                        if !call.answered {
                            call.batch.answer(call.unit, failure: SystemdError(call: "\(call.read.member)(\(call.unit))", errno: ENOTCONN))
                        }
                    },
                    userdata: call.toOpaque())
                inFlight += 1
            } catch {
                call.release()
                failure = failure ?? error
            }
        }
        finishIfDone()
    }

    private func answer(_ unit: String, _ read: UnitRead, _ reply: BusMessage) {
        if let error = sd_bus_message_get_error(reply.pointer) {
            answer(unit, failure: SystemdError(
                call: "\(read.member)(\(unit))", errno: sd_bus_message_get_errno(reply.pointer),
                busErrorName: error.pointee.name.map { String(cString: $0) },
                busErrorMessage: error.pointee.message.map { String(cString: $0) }))
            return
        }
        do {
            switch read {
            case .all:
                properties[unit, default: [:]].merge(try reply.readPropertyDictionary(only: UnitState.propertyNames)) { $1 }
            case .property(_, let name):
                properties[unit, default: [:]][name] = try reply.readVariant()
            }
        } catch {
            failure = failure ?? SystemdError(call: "\(read.member)(\(unit)): \(error.call)", errno: error.errno)
        }
        inFlight -= 1
        sendMore()
    }

    private func answer(_ unit: String, failure error: SystemdError) {
        failure = failure ?? error
        inFlight -= 1
        finishIfDone()
    }

    private func finishIfDone() {
        guard inFlight == 0, failure != nil || unsent.isEmpty, let complete else { return }
        self.complete = nil
        complete(failure.map { .failure($0) } ?? .success(properties.mapValues(UnitState.init(properties:))))
    }
}
