import CSystemd

/// One sd-bus message, owned: the reference is dropped exactly once, in `deinit`.
/// Reading advances the message's cursor, so a message is read by one reader at a time on the
/// bus thread.
final class BusMessage {
    let pointer: OpaquePointer

    /// Takes ownership of a reference the caller already holds.
    init(owning pointer: OpaquePointer) { self.pointer = pointer }

    /// Takes a new reference to a message libsystemd lends to a callback.
    init(borrowing pointer: OpaquePointer) {
        self.pointer = sd_bus_message_ref(pointer)
    }

    deinit { sd_bus_message_unref(pointer) }

    var path: String? { sd_bus_message_get_path(pointer).map { String(cString: $0) } }
    var member: String? { sd_bus_message_get_member(pointer).map { String(cString: $0) } }

    // MARK: Appending

    func append(_ argument: BusArgument) throws(SystemdError) {
        switch argument {
        case .string(let string):
            let r = string.withCString { sd_bus_message_append_basic(pointer, CChar(UInt8(ascii: "s")), $0) }
            try check(r, "sd_bus_message_append_basic(s)")
        case .int32(var value):
            try check(sd_bus_message_append_basic(pointer, CChar(UInt8(ascii: "i")), &value), "sd_bus_message_append_basic(i)")
        case .strings(let strings):
            try check(sd_bus_message_open_container(pointer, CChar(UInt8(ascii: "a")), "s"), "sd_bus_message_open_container(as)")
            for string in strings { try append(.string(string)) }
            try check(sd_bus_message_close_container(pointer), "sd_bus_message_close_container(as)")
        }
    }

    // MARK: Reading

    /// The type code of the next element and, for containers, its contents; nil at the end.
    func peekType() throws(SystemdError) -> (type: Character, contents: String?)? {
        var type: CChar = 0
        var contents: UnsafePointer<CChar>? = nil
        let r = try check(sd_bus_message_peek_type(pointer, &type, &contents), "sd_bus_message_peek_type")
        if r == 0 { return nil }
        return (Character(Unicode.Scalar(UInt8(bitPattern: type))), contents.map { String(cString: $0) })
    }

    func readString() throws(SystemdError) -> String {
        try readStringLike("s")
    }

    func readObjectPath() throws(SystemdError) -> String {
        try readStringLike("o")
    }

    private func readStringLike(_ code: Character) throws(SystemdError) -> String {
        var value: UnsafePointer<CChar>? = nil
        try check(sd_bus_message_read_basic(pointer, CChar(code.asciiValue!), &value), "sd_bus_message_read_basic(\(code))")
        return value.map { String(cString: $0) } ?? ""
    }

    func readBasic<T: FixedWidthInteger>(_ code: Character, as: T.Type) throws(SystemdError) -> T {
        var value: T = 0
        try check(sd_bus_message_read_basic(pointer, CChar(code.asciiValue!), &value), "sd_bus_message_read_basic(\(code))")
        return value
    }

    /// Reads an array of bytes (`ay`).
    func readBytes() throws(SystemdError) -> [UInt8] {
        var data: UnsafeRawPointer? = nil
        var size = 0
        try check(sd_bus_message_read_array(pointer, CChar(UInt8(ascii: "y")), &data, &size), "sd_bus_message_read_array(y)")
        guard let data, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// Enters a container; returns false at the end of the enclosing container.
    @discardableResult
    func enter(_ type: Character, _ contents: String) throws(SystemdError) -> Bool {
        let r = contents.withCString { sd_bus_message_enter_container(pointer, CChar(type.asciiValue!), $0) }
        return try check(r, "sd_bus_message_enter_container(\(type)\(contents))") > 0
    }

    func exit() throws(SystemdError) {
        try check(sd_bus_message_exit_container(pointer), "sd_bus_message_exit_container")
    }

    func skip(_ types: String) throws(SystemdError) {
        let r = types.withCString { sd_bus_message_skip(pointer, $0) }
        try check(r, "sd_bus_message_skip(\(types))")
    }

    /// Reads a variant's value as one of the property values Medic understands; skips others.
    func readVariant() throws(SystemdError) -> PropertyValue? {
        guard let (_, contents) = try peekType(), let contents else { return nil }
        try enter("v", contents)
        defer { try? exit() }
        switch contents {
        case "s": return .string(try readString())
        case "o": return .string(try readObjectPath())
        case "u": return .uint(UInt64(try readBasic("u", as: UInt32.self)))
        case "t": return .uint(try readBasic("t", as: UInt64.self))
        case "i": return .int(Int64(try readBasic("i", as: Int32.self)))
        case "x": return .int(try readBasic("x", as: Int64.self))
        case "b": return .bool(try readBasic("b", as: Int32.self) != 0)
        case "ay": return .bytes(try readBytes())
        case "as":
            var strings: [String] = []
            try enter("a", "s")
            while let (type, _) = try peekType(), type == "s" { strings.append(try readString()) }
            try exit()
            return .strings(strings)
        case "a(sasbttttuii)":
            var commands: [ExecCommandStatus] = []
            try enter("a", "(sasbttttuii)")
            while try enter("r", "sasbttttuii") {
                let path = try readString()
                var arguments: [String] = []
                try enter("a", "s")
                while let (type, _) = try peekType(), type == "s" { arguments.append(try readString()) }
                try exit()
                try skip("btttt")
                let pid = try readBasic("u", as: UInt32.self)
                let code = try readBasic("i", as: Int32.self)
                let status = try readBasic("i", as: Int32.self)
                try exit()
                commands.append(ExecCommandStatus(path: path, arguments: arguments, pid: pid, code: code, status: status))
            }
            try exit()
            return .commands(commands)
        default:
            try skip(contents)
            return nil
        }
    }

    /// Reads an `a{sv}` dictionary of properties; with `only`, skips the values of the others
    /// unread (a service's GetAll has some 250, of which Medic reads 20).
    func readPropertyDictionary(only wanted: Set<String>? = nil) throws(SystemdError) -> [String: PropertyValue] {
        var result: [String: PropertyValue] = [:]
        try enter("a", "{sv}")
        while try enter("e", "sv") {
            let key = try readString()
            if let wanted, !wanted.contains(key) {
                try skip("v")
            } else if let value = try readVariant() {
                result[key] = value
            }
            try exit()
        }
        try exit()
        return result
    }
}

/// An argument of a method call.
enum BusArgument: Sendable {
    case string(String)
    case int32(Int32)
    case strings([String])
}

/// A property value as read from the bus.
enum PropertyValue: Equatable {
    case string(String)
    case uint(UInt64)
    case int(Int64)
    case bool(Bool)
    case bytes([UInt8])
    case strings([String])
    case commands([ExecCommandStatus])

    var string: String? { if case .string(let s) = self { return s } else { return nil } }
    var uint: UInt64? { if case .uint(let v) = self { return v } else { return nil } }
    var int: Int64? { if case .int(let v) = self { return v } else { return nil } }
    var bytes: [UInt8]? { if case .bytes(let v) = self { return v } else { return nil } }
    var strings: [String]? { if case .strings(let v) = self { return v } else { return nil } }
}
