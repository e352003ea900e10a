import CSystemd

/// One open sd-bus connection, owned: closed and freed exactly once, in `deinit`.
/// Used only on the bus thread.
final class BusConnection {
    let pointer: OpaquePointer

    /// Opens and starts a connection to the bus at `address`.
    init(address: BusAddress) throws(SystemdError) {
        var bus: OpaquePointer? = nil
        switch address {
        case .system:
            try check(sd_bus_open_system(&bus), "sd_bus_open_system(\(address))")
        case .address(let text):
            try check(sd_bus_new(&bus), "sd_bus_new")
            do {
                try check(text.withCString { sd_bus_set_address(bus, $0) }, "sd_bus_set_address(\(text))")
                try check(sd_bus_set_bus_client(bus, 1), "sd_bus_set_bus_client")
                try check(sd_bus_start(bus), "sd_bus_start(\(text))")
            } catch {
                sd_bus_unref(bus)
                throw error
            }
        }
        pointer = bus!
    }

    deinit { sd_bus_flush_close_unref(pointer) }

    var fd: Int32 { sd_bus_get_fd(pointer) }
    var events: Int32 { sd_bus_get_events(pointer) }
    var isOpen: Bool { sd_bus_is_open(pointer) > 0 }

    /// sd-bus's own next timeout in microseconds of CLOCK_MONOTONIC, or nil for none.
    var timeoutUSec: UInt64? {
        var usec: UInt64 = 0
        guard sd_bus_get_timeout(pointer, &usec) >= 0, usec != UInt64.max else { return nil }
        return usec
    }

    /// Calls a method and waits for its reply (the bus thread blocks; replies take ~1 ms).
    func call(
        destination: String, path: String, interface: String, member: String,
        arguments: [BusArgument] = [], timeoutUSec: UInt64 = 25_000_000
    ) throws(SystemdError) -> BusMessage {
        var raw: OpaquePointer? = nil
        let name = "sd_bus_call(\(interface).\(member))"
        try check(
            sd_bus_message_new_method_call(pointer, &raw, destination, path, interface, member),
            "sd_bus_message_new_method_call(\(member))")
        let request = BusMessage(owning: raw!)
        for argument in arguments { try request.append(argument) }
        var error = sd_bus_error(name: nil, message: nil, _need_free: 0)
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer? = nil
        let r = sd_bus_call(pointer, request.pointer, timeoutUSec, &error, &reply)
        if r < 0 {
            throw SystemdError(
                call: name, errno: -r,
                busErrorName: error.name.map { String(cString: $0) },
                busErrorMessage: error.message.map { String(cString: $0) })
        }
        return BusMessage(owning: reply!)
    }

    /// Sends a method call without waiting: `handler` gets the reply (or the error sd-bus makes
    /// for a timeout or a lost connection) when `process()` dispatches it. `destroy` runs once
    /// when the call's slot is freed: after the reply was handled, or with the connection, if
    /// the reply never came. Both get `userdata`.
    func callAsync(
        destination: String, path: String, interface: String, member: String, arguments: [BusArgument] = [],
        timeoutUSec: UInt64 = 25_000_000, handler: sd_bus_message_handler_t, destroy: sd_bus_destroy_t,
        userdata: UnsafeMutableRawPointer
    ) throws(SystemdError) {
        var raw: OpaquePointer? = nil
        try check(
            sd_bus_message_new_method_call(pointer, &raw, destination, path, interface, member),
            "sd_bus_message_new_method_call(\(member))")
        let request = BusMessage(owning: raw!)
        for argument in arguments { try request.append(argument) }
        var slot: OpaquePointer? = nil
        try check(sd_bus_call_async(pointer, &slot, request.pointer, handler, userdata, timeoutUSec), "sd_bus_call_async(\(interface).\(member))")
        sd_bus_slot_set_destroy_callback(slot, destroy)
        // Owned by the connection from here on: freed once the reply is handled, or with it.
        sd_bus_slot_set_floating(slot, 1)
        sd_bus_slot_unref(slot)
    }

    /// Adds a match for a signal; the slot lives as long as the connection.
    func matchSignal(
        sender: String, path: String?, interface: String, member: String,
        handler: sd_bus_message_handler_t, userdata: UnsafeMutableRawPointer
    ) throws(SystemdError) {
        let r = sd_bus_match_signal(pointer, nil, sender, path, interface, member, handler, userdata)
        try check(r, "sd_bus_match_signal(\(interface).\(member))")
    }

    /// Processes one pending message; returns true if something was done.
    func process() throws(SystemdError) -> Bool {
        try check(sd_bus_process(pointer, nil), "sd_bus_process") > 0
    }
}
