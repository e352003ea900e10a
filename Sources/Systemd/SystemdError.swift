import CSystemd
import Glibc
import Posix

/// A failed call into libsystemd (or a system call made on its behalf): which call, and the
/// errno it returned, by name. Bus method errors also carry the D-Bus error name and message.
public struct SystemdError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The C function that failed, e.g. `sd_bus_call(RestartUnit)`.
    public var call: String
    /// The positive errno value.
    public var errno: Int32
    /// The D-Bus error name (`org.freedesktop.systemd1.NoSuchUnit`), when the peer sent one.
    public var busErrorName: String?
    /// The D-Bus error message, when the peer sent one.
    public var busErrorMessage: String?

    public init(call: String, errno: Int32, busErrorName: String? = nil, busErrorMessage: String? = nil) {
        self.call = call
        self.errno = errno
        self.busErrorName = busErrorName
        self.busErrorMessage = busErrorMessage
    }

    /// The symbolic name of the errno, e.g. `ECONNREFUSED`.
    public var errnoName: String {
        if let name = medic_errno_name(errno) { return String(cString: name) }
        return "errno \(errno)"
    }

    public var description: String {
        var text = "\(call) failed: \(errnoName) (\(PosixError.reason(errno)))"
        if let busErrorName { text += ", \(busErrorName)" }
        if let busErrorMessage { text += ": \(busErrorMessage)" }
        return text
    }

    /// Whether the error means the bus connection itself is gone.
    public var isDisconnect: Bool {
        [ECONNRESET, ENOTCONN, EPIPE, ESHUTDOWN, ECONNREFUSED, ENOENT].contains(errno)
    }
}

/// Turns a libsystemd return value into a thrown `SystemdError` when it is negative.
@discardableResult
func check(_ result: Int32, _ call: @autoclosure () -> String) throws(SystemdError) -> Int32 {
    if result < 0 { throw SystemdError(call: call(), errno: -result) }
    return result
}
